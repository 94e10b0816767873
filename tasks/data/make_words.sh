#!/bin/sh
# Regenerates tasks/data/words.txt from Debian's wamerican list: lowercase ASCII words of
# 4 to 8 letters (no proper nouns, possessives or accents), sorted and unique. The list
# is committed so that samples do not change when the system's dictionary does.
set -eu
src=${1:-/usr/share/dict/american-english}
LC_ALL=C grep -E '^[a-z]{4,8}$' "$src" | LC_ALL=C sort -u > "$(dirname "$0")/words.txt"
