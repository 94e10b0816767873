#!/usr/bin/env bash
# Packs the GPU tests (every ctest test labelled `gpu`) and the GPU benchmarks, with the
# shared libraries they need except the C runtime and CUDA's own, and the model test data
# (tests/data/model), into .device/, so
# they run on a GPU host that lacks gRPC, abseil, SQLite or yaml-cpp:
#   make gpu-pack                       # here
#   cd .device && ./run-gpu-tests.sh    # there; logs go to $OUT (or ./logs)
set -euo pipefail
build=${1:-build}
dest=${2:-.device}
rm -rf "$dest"
mkdir -p "$dest/lib"

mapfile -t exes < <(ctest --test-dir "$build" -L gpu --show-only=json-v1 |
  python3 -c 'import json,sys
for t in json.load(sys.stdin)["tests"]:
    print(t["command"][0])')
# Benchmarks that use the GPU (named *cuda*/*gpu*: since the model engine links the CUDA
# runtime, linking it no longer tells GPU benchmarks from CPU ones).
for b in "$build"/bench/*cuda*_bench "$build"/bench/*gpu*_bench; do
  [[ -x $b ]] && exes+=("$b")
done
# sfctl for the end-to-end run (run-gpu-e2e.sh below).
[[ -x $build/cli/sfctl ]] && exes+=("$build/cli/sfctl")
((${#exes[@]})) || { echo "gpu-pack: no GPU tests found (configured with SF_WITH_CUDA=OFF?)" >&2; exit 1; }

for exe in "${exes[@]}"; do
  cp "$exe" "$dest/"
  ldd "$exe" | awk '/=> \//{print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libgcc_s*|libstdc++*) ;;
      libcuda.so*|libcudart.so*|libcublas*|libcurand*|libnvidia*|libnvrtc*) ;;
      *) cp -Lu "$lib" "$dest/lib/" ;;
    esac
  done
done
strip --strip-unneeded "$dest"/lib/*.so* 2>/dev/null || true
# Debug info is most of a test binary's size; the pack must stay small to travel.
for exe in "${exes[@]}"; do strip --strip-debug "$dest/$(basename "$exe")" 2>/dev/null || true; done
# The Python peers of the benchmarks (deploy/bench/*.py), run beside them on the host.
src_root=$(cd "$(dirname "$0")/.." && pwd)
cp "$src_root"/deploy/bench/*.py "$dest/"
# The model conformance vectors (a few MB) for cuda_engine_gpu_test; run-gpu-tests.sh
# points SF_MODEL_TEST_DATA at them.
if [[ -d $src_root/tests/data/model ]]; then
  mkdir -p "$dest/data"
  cp -r "$src_root/tests/data/model" "$dest/data/model"
fi

cat > "$dest/run-gpu-tests.sh" <<'RUN'
#!/usr/bin/env bash
# Runs every packed GPU test; prints and logs each, exits non-zero if any failed.
cd "$(dirname "$0")"
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
# The conformance vectors: packed beside the tests, else those of the checkout at $REPO
# (the archive below leaves them out).
export SF_MODEL_TEST_DATA=$PWD/data/model
[[ -d $SF_MODEL_TEST_DATA ]] || SF_MODEL_TEST_DATA=${REPO:-..}/tests/data/model
# cuBLAS (the CUDA engine's GEMMs) from the toolkit, else from the pip wheel nvidia-cublas.
pip_cublas=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null || true)
[[ -n $pip_cublas ]] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$pip_cublas
logs=${OUT:-$PWD/logs}; mkdir -p "$logs"
# cuda_engine_gpu_test writes its bf16 suite's tiny checkpoints and logits here, for
# hf_bf16_check.py (transformers on the same checkpoints) after the tests.
export SF_BF16_DUMP_DIR=$logs/bf16-models; mkdir -p "$SF_BF16_DUMP_DIR"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$logs/nvidia-smi.txt"
failed=0
for t in ./*_gpu_test; do
  [[ -x $t ]] || continue
  echo "== $t"
  "$t" 2>&1 | tee "$logs/$(basename "$t").log"
  rc=${PIPESTATUS[0]}
  echo "== $t exit $rc"
  [[ $rc -eq 0 ]] || failed=1
done
if python3 -c 'import transformers' 2>/dev/null; then
  echo "== hf_bf16_check.py"
  python3 hf_bf16_check.py "$SF_BF16_DUMP_DIR" 2>&1 | tee "$logs/hf_bf16_check.log"
  rc=${PIPESTATUS[0]}
  echo "== hf_bf16_check.py exit $rc"
  [[ $rc -eq 0 ]] || failed=1
else
  echo "== hf_bf16_check.py skipped: this python3 has no transformers"
fi
exit $failed
RUN
chmod +x "$dest/run-gpu-tests.sh"

# End to end on the GPU: a sweep (the quickstart by default) with the CUDA backend, on the
# model zoo of the checkout at $REPO, else on tiny random-weight models made there with
# the real tokenizers.
npm_dir=$src_root/third_party/npm/node_modules/@lenml
if [[ -x $dest/sfctl && -f $npm_dir/tokenizer-llama3/models/tokenizer.json ]]; then
  mkdir -p "$dest/e2e"
  gzip -c "$npm_dir/tokenizer-llama3/models/tokenizer.json" > "$dest/e2e/llama3-tokenizer.json.gz"
  gzip -c "$npm_dir/tokenizer-qwen3/models/tokenizer.json" > "$dest/e2e/qwen3-tokenizer.json.gz"
  cp "$src_root/examples/quickstart.yaml" "$dest/e2e/"
  cat > "$dest/run-gpu-e2e.sh" <<'RUN'
#!/usr/bin/env bash
# Runs a sweep with `sfctl run --backend cuda`; the database, the results and the analysis
# go to $OUT (or ./logs). Extra arguments go to sfctl run (e.g. --workers 8); BACKEND
# (default cuda) picks the engine.
# With REPO naming a checkout of the repository, the sweep runs from its root, so the
# spec's model paths (models/zoo/...) are the checkout's: SPEC (default
# examples/quickstart.yaml) is relative to that root. Without REPO, the packed quickstart
# runs on two tiny random-weight models made here with the real tokenizers.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
export LD_LIBRARY_PATH=$here/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
pip_cublas=$(python3 -c 'import nvidia.cublas, os; print(os.path.join(list(nvidia.cublas.__path__)[0], "lib"))' 2>/dev/null || true)
[[ -n $pip_cublas ]] && export LD_LIBRARY_PATH=$LD_LIBRARY_PATH:$pip_cublas
logs=${OUT:-$here/logs}; mkdir -p "$logs"; logs=$(cd "$logs" && pwd)
sfctl=$here/sfctl
"$sfctl" devices
if [[ -n ${REPO:-} ]]; then
  cd "$REPO"
  spec=${SPEC:-examples/quickstart.yaml}
  [[ -f $spec ]] || { echo "run-gpu-e2e: no spec $spec under $REPO" >&2; exit 2; }
  # RESUME_FROM: a gpu-run.tar.gz of an earlier run (PACK=1 below); its database and
  # outboxes go back in place, so sfctl run reuses the finished jobs and goes on.
  if [[ -n ${RESUME_FROM:-} ]]; then
    tar -C "$logs" -xzf "$RESUME_FROM" || { echo "run-gpu-e2e: cannot unpack $RESUME_FROM" >&2; exit 2; }
    rm -rf "$logs/report"
  fi
  rc=0
  time "$sfctl" run "$spec" --backend "${BACKEND:-cuda}" --db "$logs/gpu-run.db" --report "$logs/report" "$@" || rc=$?
  # PACK=1: everything in $logs (the database with its write-ahead log, the workers'
  # outboxes, the report) as one gpu-run.tar.gz, for hosts that hand back few files.
  # Stopped early (timeout -s INT), sfctl keeps what finished; resume with RESUME_FROM.
  if [[ ${PACK:-0} == 1 ]]; then
    (cd "$logs" && tar -czf /tmp/gpu-run.$$.tar.gz . && find . -mindepth 1 -maxdepth 1 -exec rm -rf {} + &&
      mv /tmp/gpu-run.$$.tar.gz gpu-run.tar.gz && echo "run-gpu-e2e: $logs/gpu-run.tar.gz ($(du -h gpu-run.tar.gz | cut -f1))")
  fi
  exit $rc
fi
[[ -z ${SPEC:-} ]] || { echo "run-gpu-e2e: SPEC needs REPO (the checkout whose models it names)" >&2; exit 2; }
work=$here/e2e
[[ -d $work ]] || { echo "run-gpu-e2e: no packed quickstart here (.device-e2e.tar.xz has none); set REPO to a checkout" >&2; exit 2; }
for t in llama3 qwen3; do
  [[ -f $work/$t-tokenizer.json ]] || gunzip -c "$work/$t-tokenizer.json.gz" > "$work/$t-tokenizer.json"
done
cd "$work"
[[ -f models/tiny-llama/config.json ]] || "$sfctl" make-tiny-model --out models/tiny-llama --arch llama --tokenizer llama3-tokenizer.json --max-positions 4096
[[ -f models/tiny-qwen/config.json ]] || "$sfctl" make-tiny-model --out models/tiny-qwen --arch qwen2 --tokenizer qwen3-tokenizer.json --max-positions 4096
models="{name: tiny-llama, path: models/tiny-llama}, {name: tiny-qwen, path: models/tiny-qwen}"
time "$sfctl" run quickstart.yaml --set "models=[$models]" --backend cuda --db "$logs/gpu-run.db" --report "$logs/report" "$@"
RUN
  chmod +x "$dest/run-gpu-e2e.sh"
fi
echo "gpu-pack: ${#exes[@]} executables in $dest ($(du -sh "$dest" | cut -f1))"

# Two smaller files to copy to a GPU host that has a checkout of the repository (each
# a few MB against the folder's 120; REPO names the checkout there):
#   $dest-tests.tar.xz: the tests, benchmarks, Python peers and the libraries they need,
#     without sfctl or the conformance vectors (run-gpu-tests.sh then reads
#     $REPO/tests/data/model):
#       tar -xJf .device-tests.tar.xz && REPO=/path/to/checkout .device/run-gpu-tests.sh
#   $dest-e2e.tar.xz: sfctl, its libraries and run-gpu-e2e.sh, for a sweep on the
#     checkout's models:
#       tar -xJf .device-e2e.tar.xz && REPO=/path/to/checkout SPEC=examples/miniature.yaml \
#         .device/run-gpu-e2e.sh --workers 8
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
packed=$(cd "$dest" && pwd)
# pack_subset NAME FILE... : the files and the packed libraries they load, as $dest-NAME.tar.xz
pack_subset() {
  local name=$1; shift
  rm -rf "$stage/.device" && mkdir -p "$stage/.device/lib"
  local f
  for f in "$@"; do cp "$f" "$stage/.device/"; done
  for f in "$@"; do
    [[ -x $f && $f != *.sh && $f != *.py ]] || continue
    LD_LIBRARY_PATH="$packed/lib" ldd "$f" | awk -v lib="$packed/lib/" 'index($3, lib) == 1 {print $3}'
  done | sort -u | while read -r lib; do cp "$lib" "$stage/.device/lib/"; done
  tar -C "$stage" -cf - .device | xz -T0 -6 >"$dest-$name.tar.xz"
  echo "gpu-pack: $dest-$name.tar.xz ($(du -sh "$dest-$name.tar.xz" | cut -f1))"
}
shopt -s nullglob
pack_subset tests "$packed"/run-gpu-tests.sh "$packed"/*.py "$packed"/*_gpu_test "$packed"/*_bench
[[ -x $packed/run-gpu-e2e.sh ]] && pack_subset e2e "$packed"/run-gpu-e2e.sh "$packed"/sfctl
