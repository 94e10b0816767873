#!/usr/bin/env bash
# Compares our sparse-attention selections with the study's Python code on the same Q/K/V
# (deploy/compare/compare_study.py; docs/methods.md records the result). Needs python3
# with torch; no vllm, flash_attn or GPU needed (the selections run on the CPU).
#   ./run-on-gpu-host.sh STUDY_CHECKOUT [OUT]        # in the packed folder (pack.sh)
#   ./run-on-gpu-host.sh --inputs-only DIR [SFCTL]   # only write the inputs
# STUDY_CHECKOUT: a copy of PiotrNawrot/sparse-frontier (not part of this repository).
# OUT (default $OUT or ./logs) receives compare.txt and compare.json.
set -euo pipefail
abs() { [[ $1 == /* ]] && echo "$1" || echo "$PWD/$1"; }  # before the cd below
args=()
for a in "$@"; do [[ $a == --* ]] && args+=("$a") || args+=("$(abs "$a")"); done
set -- "${args[@]}"
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=$PWD/lib:${LD_LIBRARY_PATH:-}

write_inputs() {  # DIR SFCTL
  local dir=$1 sfctl=$2
  # L = 2048 (the study's kernels want multiples of 64), 8 query heads over 2 KV heads.
  "$sfctl" fidelity --length 2048 --heads 8 --kv-heads 2 --head-dim 64 --seed 1 \
    --compare-dir "$dir/structured"
  "$sfctl" fidelity --length 2048 --heads 8 --kv-heads 2 --head-dim 64 --seed 2 --random \
    --compare-dir "$dir/random"
}

if [[ ${1:-} == --inputs-only ]]; then
  write_inputs "$2" "${3:-./sfctl}"
  exit 0
fi
study=${1:?usage: $0 STUDY_CHECKOUT [OUT]}
out=${2:-${OUT:-$PWD/logs}}
mkdir -p "$out"
python3 -c 'import torch; print("torch", torch.__version__)'
inputs=inputs
if [[ -x ./sfctl ]] && ./sfctl version >/dev/null 2>&1; then
  inputs=$out/inputs
  write_inputs "$inputs" ./sfctl
else
  echo "sfctl does not run here: using the inputs packed with it"
fi
python3 compare_study.py --self-test
python3 compare_study.py --study "$study" --json "$out/compare.json" \
  "$inputs/structured" "$inputs/random" | tee "$out/compare.txt"
