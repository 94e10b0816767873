#!/usr/bin/env bash
# `make demo`: the main job on its embedded default. Runs examples/quickstart.yaml end to
# end on the CPU, over the trained model zoo (models/zoo/, docs/zoo.md).
set -euo pipefail
build=${1:-build}
sfctl="$build/cli/sfctl"
for m in zoo-xs zoo-s zoo-m zoo-l; do
  [[ -f models/zoo/$m/model.safetensors ]] ||
    { echo "demo: models/zoo/$m is missing; run make demo from a full checkout of the repository" >&2; exit 1; }
done

echo "== sfctl devices"
"$sfctl" devices
echo "== sfctl run examples/quickstart.yaml (embedded coordinator + local CPU workers)"
echo "   The trained model zoo's four sizes (docs/zoo.md) on one-key and four-key NIAH at 1K and 2K"
echo "   tokens, dense against vertical_slash and quest at compressions 2 and 4. It ends"
echo "   with the results table, the analysis summary and the path of the HTML report"
echo "   (sfctl-run-report/sweep-<id>/index.html); sfctl analyze quickstart redraws it from"
echo "   sfctl-run.db, and sfctl results --db sfctl-run.db reads the results with no"
echo "   coordinator running."
"$sfctl" run examples/quickstart.yaml --db sfctl-run.db --workers 2
