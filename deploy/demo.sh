#!/usr/bin/env bash
# `make demo`: the main job on its embedded default. The end-to-end sweep
# (`sfctl run examples/quickstart.yaml`) is not built yet; until it is, this runs
# what exists and says so.
set -euo pipefail
build=${1:-build}
sfctl="$build/cli/sfctl"
echo "== sfctl version"
"$sfctl" version
echo "== sfctl devices"
"$sfctl" devices
echo
echo "demo: ran what exists today (sfctl version, sfctl devices)."
echo "demo: the end-to-end sweep 'sfctl run examples/quickstart.yaml' is not built yet."
