#!/usr/bin/env bash
# Checks the include rules that keep every build configuration compiling: <regex> only
# through common/std_regex.h, which silences GCC's false -Wmaybe-uninitialized inside
# libstdc++'s regex under ASan (docs/sanitizers.md). ctest runs it as the unit test
# `include_rules`.
#   usage: tools/check-includes.sh
# Exit codes: 0 clean, 1 a rule is broken (the lines are listed), 77 skipped (no git
# checkout: ctest reports it as skipped).
set -uo pipefail
cd "$(dirname "$0")/.."
if ! git rev-parse --git-dir >/dev/null 2>&1; then
  echo "SKIPPED: not a git checkout, so there is no list of tracked sources to check"
  exit 77
fi
hits=$(git grep -nE '^\s*#\s*include\s*<regex>' -- '*.cc' '*.h' '*.cu' '*.cuh' \
         ':!:third_party/*' ':!:common/std_regex.h')
if [[ -n $hits ]]; then
  echo "include <regex> through \"common/std_regex.h\" (docs/sanitizers.md says why):"
  echo "$hits" | sed 's/^/  /'
  exit 1
fi
echo "include rules: <regex> only through common/std_regex.h"
