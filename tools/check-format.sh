#!/usr/bin/env bash
# Checks that every tracked C++/CUDA source (third_party/ aside) is formatted as the
# repository's .clang-format says; lists the files that are not. ctest runs it as the
# unit test `clang_format`.
#   usage: tools/check-format.sh   (fix: clang-format -i FILE...)
# Exit codes: 0 formatted, 1 some files are not, 77 skipped (no clang-format or no git
# checkout: ctest reports it as skipped).
set -uo pipefail
cd "$(dirname "$0")/.."

clang_format="${CLANG_FORMAT:-}"
if [[ -z "$clang_format" ]]; then
  for candidate in clang-format clang-format-19 clang-format-18 clang-format-17 \
                   clang-format-16 clang-format-15 clang-format-14; do
    if command -v "$candidate" >/dev/null 2>&1; then
      clang_format="$candidate"
      break
    fi
  done
fi
if [[ -z "$clang_format" ]] || ! command -v "$clang_format" >/dev/null 2>&1; then
  echo "SKIPPED: clang-format is not installed (deploy/install-deps.sh installs it)"
  exit 77
fi
if ! files=$(git ls-files -- '*.cc' '*.h' '*.cu' '*.cuh' ':!:third_party/*' 2>/dev/null); then
  echo "SKIPPED: not a git checkout, so there is no list of tracked sources to check"
  exit 77
fi

# One clang-format run over all files; each violation names its file first.
mapfile -t present < <(while IFS= read -r f; do [[ -f "$f" ]] && echo "$f"; done <<<"$files")
report=$(printf '%s\0' "${present[@]}" | xargs -0 "$clang_format" --dry-run -Werror 2>&1)
mapfile -t unformatted < <(sed -n 's/^\([^:]*\):[0-9]*:[0-9]*: error: .*clang-format-violations.*/\1/p' \
                             <<<"$report" | sort -u)
if ((${#unformatted[@]} == 0)) && [[ -n "$report" ]]; then
  echo "clang-format failed:"
  echo "$report" | head -20
  exit 1
fi

if ((${#unformatted[@]} > 0)); then
  echo "${#unformatted[@]} file(s) not formatted as .clang-format says ($("$clang_format" --version)):"
  printf '  %s\n' "${unformatted[@]}"
  echo "fix with: $clang_format -i FILE... (or format the whole tree:"
  echo "  git ls-files -- '*.cc' '*.h' '*.cu' '*.cuh' ':!:third_party/*' | xargs $clang_format -i)"
  exit 1
fi
echo "clang-format: ${#present[@]} files formatted ($("$clang_format" --version))"
