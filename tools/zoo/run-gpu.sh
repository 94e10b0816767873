#!/usr/bin/env bash
# Trains and evaluates the zoo on a GPU host with torch and transformers (no build
# dependencies): the run.sh of a folder made by tools/zoo/make-bundle.sh, callable from
# any working folder, finished within ZOO_BUDGET_S seconds (default 570: one 10-minute
# device command). Writes to $OUT: zoo-run.log (everything) and the models in Hugging
# Face format (each with train_log.json and reference.json, plus eval.json) as
# zoo-models.tar.gz cut into 15 MiB parts zoo-models.tar.gz.part-00, -01, ... (a device
# hands back at most 8 files of at most 16 MiB); prints a short summary. Put the parts
# together with `cat zoo-models.tar.gz.part-* > zoo-models.tar.gz` and check the sha256
# that the log and the summary give.
#   OUT=/some/dir /path/to/bundle/run.sh
# Environment: ZOO_SIZES (size:seconds in training order; time a size leaves unused goes
# to the next; the training deadline cuts the last one short), ZOO_BUDGET_S, ZOO_EVAL_S
# (seconds kept for evaluation), ZOO_SCALE (fraction of the sample counts, e.g. 0.05 for
# a smoke test), ZOO_TRAIN_ARGS (more train.py options), ZOO_INIT (size=model folder,...
# on the host to start sizes from, e.g. zoo-l=$REPO/models/zoo/zoo-l, beside init/),
# ZOO_PARALLEL=1 (train the sizes at the same time, each for its own seconds; then
# ZOO_ARGS_zoo_m etc. add options for one size).
set -uo pipefail
OUT=${OUT:?set OUT to the results folder}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
START=$(date +%s)
BUDGET=${ZOO_BUDGET_S:-570}
EVAL_S=${ZOO_EVAL_S:-70}
TAR_S=12
LOG=$OUT/zoo-run.log
WORK=$(mktemp -d /tmp/zoo-work.XXXXXX)
SIZES=${ZOO_SIZES:-zoo-l:330,zoo-s:400}
SCALE=${ZOO_SCALE:-1}
JOBS=$(nproc)
say() { echo "$*" | tee -a "$LOG"; }
left() { echo $((START + BUDGET - $(date +%s))); }
: >"$LOG"
say "zoo: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $JOBS cores, sizes $SIZES, budget ${BUDGET}s"

# 1. Samples from the project's generators. Sample seed of the i-th sample of length L in
# seed range R: 2^32 + R*10^10 + L*10^6 + i. R: 0 training, 1 training of one-key NIAH,
# 2 and 3 held-out evaluation (eval_hf.py), 4 and 5 validation during training. Sweeps
# evaluate with seeds below 2^32, so none of these is ever scored.
BASE=4294967296
PER_JOB=500
dump_jobs() {  # task length count range folder [num_queries for ruler_niah]
  local task=$1 len=$2 count=$3 range=$4 dir=$5 queries=${6:-4} i=0 n tag=""
  [[ $queries != 4 ]] && tag="-q$queries"
  count=$(python3 -c "print(max(1, int($count * $SCALE)))")
  while ((count > 0)); do
    n=$((count < PER_JOB ? count : PER_JOB))
    echo "$task $len $n $((BASE + range * 10000000000 + len * 1000000 + i * PER_JOB)) $dir/$task-$len$tag-$i.jsonl $queries"
    count=$((count - n)); i=$((i + 1))
  done
}
{
  # One-key NIAH from 640 tokens (the shortest length whose filler fits every sample),
  # four-key NIAH and variable tracking from 1024 (their fixed text needs 650 and 750).
  for L in 640:24000 1024:12000 2048:6000 4096:5000; do
    dump_jobs ruler_niah "${L%%:*}" "${L##*:}" 1 "$WORK/data" 1
  done
  for L in 1024:3000 2048:2000 4096:2000; do
    dump_jobs ruler_niah "${L%%:*}" "${L##*:}" 0 "$WORK/data"
  done
  for L in 1024:1500 2048:1500 4096:1500; do
    dump_jobs ruler_vt "${L%%:*}" "${L##*:}" 0 "$WORK/data"
  done
  for L in 640 1024 2048 4096; do dump_jobs ruler_niah $L 32 5 "$WORK/val" 1; done
  dump_jobs ruler_niah 4096 32 4 "$WORK/val"
  dump_jobs ruler_vt 4096 32 4 "$WORK/val"
  for L in 2048:32 4096:32 8192:16; do
    dump_jobs ruler_niah "${L%%:*}" "${L##*:}" 3 "$WORK/holdout" 1
  done
  dump_jobs ruler_niah 4096 32 2 "$WORK/holdout"
  dump_jobs ruler_vt 4096 32 2 "$WORK/holdout"
} >"$WORK/jobs.txt"
mkdir -p "$WORK/data" "$WORK/val" "$WORK/holdout"
t0=$(date +%s)
# The last field is ruler_niah's num_queries; other tasks would reject it.
timeout 90 xargs -P "$JOBS" -L 1 sh -c \
  'p=""; [ "$0" = ruler_niah ] && p="-p num_queries=$5"; ./bin/sf-tasks-dump "$0" --length "$1" --count "$2" --seed "$3" --ids $p --tokenizer tokenizer/tokenizer.json -o "$4" >/dev/null' \
  <"$WORK/jobs.txt" 2>>"$LOG"
dump_rc=$?
say "dump: rc=$dump_rc, $(ls "$WORK/data" | wc -l)/$(grep -c /data/ "$WORK/jobs.txt") training files ($(du -sh "$WORK/data" | cut -f1)), $(ls "$WORK/val" | wc -l) validation, $(ls "$WORK/holdout" | wc -l) held-out, $(($(date +%s) - t0))s"

# 2. Training, one size after the other, all saved by the deadline; a size with a model
# in init/ starts from it.
t0=$(date +%s)
init=""
for dir in init/*/; do
  [[ -f $dir/model.safetensors.xz ]] || continue
  name=$(basename "$dir")
  mkdir -p "$WORK/init/$name" && cp "$dir"/*.json "$WORK/init/$name/"
  python3 -c "import lzma, shutil, sys; shutil.copyfileobj(lzma.open(sys.argv[1]), open(sys.argv[2], 'wb'))" \
    "$dir/model.safetensors.xz" "$WORK/init/$name/model.safetensors" &&
    init="$init${init:+,}$name=$WORK/init/$name"
done
init_list=${ZOO_INIT:-}
for item in ${init_list//,/ }; do
  [[ -f ${item#*=}/model.safetensors ]] || { say "init: ${item#*=} has no model.safetensors; ${item%%=*} starts from scratch"; continue; }
  init="$init${init:+,}$item"
done
[[ -n $init ]] && say "init: ${init//$WORK\//}"
deadline=$((START + BUDGET - EVAL_S - TAR_S))
train() {  # SIZES [more train.py options]: train.py until the deadline
  local sizes=$1; shift
  timeout $((deadline - $(date +%s) + 30)) python3 train.py --data "$WORK/data" --val "$WORK/val" \
    --tokenizer tokenizer --out "$WORK/models" --sizes "$sizes" --deadline "$deadline" \
    ${init:+--init "$init"} ${ZOO_TRAIN_ARGS:-} "$@"
}
if [[ ${ZOO_PARALLEL:-0} == 1 ]]; then
  # One train.py per size, all at once: a small model leaves most of the GPU idle, so
  # each size gets its seconds in the same wall time. Per-size options from
  # ZOO_ARGS_<size with _ for ->, e.g. ZOO_ARGS_zoo_l="--task-weights ruler_vt:4".
  items=(${SIZES//,/ })
  workers=$((JOBS / ${#items[@]} > 0 ? JOBS / ${#items[@]} : 1))
  pids=()
  for item in "${items[@]}"; do
    size=${item%%:*}
    extra_var="ZOO_ARGS_${size//-/_}"
    train "$item" --workers "$workers" ${!extra_var:-} >"$WORK/train-$size.log" 2>&1 &
    pids+=($!)
  done
  rc=0
  for pid in "${pids[@]}"; do wait "$pid" || rc=$?; done
  for item in "${items[@]}"; do cat "$WORK/train-${item%%:*}.log" >>"$LOG"; done
  say "train: ${#items[@]} sizes in parallel, rc=$rc in $(($(date +%s) - t0))s"
else
  train "$SIZES" >>"$LOG" 2>&1
  say "train: rc=$? in $(($(date +%s) - t0))s"
fi
grep -E "^(data:|trained |skipped )" "$LOG" | cut -c1-240 | sed 's/^/  /'
# A short learning curve per size: whole-answer exact match (teacher-forced) on the
# validation sets at up to 6 checks, the last one after training.
python3 - "$WORK/models" <<'EOF' | tee -a "$LOG"
import glob, json, os, sys
for path in sorted(glob.glob(os.path.join(sys.argv[1], "zoo-*", "train_log.json"))):
    log = json.load(open(path))
    val = log.get("val", [])
    pick = sorted({round(i * (len(val) - 1) / 5) for i in range(6)}) if len(val) > 6 else range(len(val))
    levels = " ".join(f"{l['length']}@{l['seconds']:.0f}s" for l in log["levels"])
    print(f"curve {log['size']} (exact; levels {levels}):")
    for i in pick:
        v = val[i]
        cells = " ".join(f"{k.replace('ruler_niah/q1', 'q1').replace('ruler_niah', 'q4').replace('ruler_vt', 'vt')} {e:.2f}"
                         for k, (a, e) in v["scores"].items())
        print(f"  s{v['step']} t{v['seconds']:.0f} L{v['level']}: {cells}")
EOF

# 3. Evaluation with transformers (teacher-forced and generated), reference logits.
t0=$(date +%s)
models=$(ls -d "$WORK"/models/zoo-* 2>/dev/null | sort -t- -k2)
if [[ -n $models ]]; then
  eval_limit=$(($(left) - TAR_S))
  ((eval_limit < 30)) && eval_limit=30
  timeout "$eval_limit" python3 eval_hf.py --holdout "$WORK/holdout" --generate 4 --max-samples 32 \
    --deadline $(($(date +%s) + eval_limit - 5)) --json "$WORK/models/eval.json" $models \
    >"$WORK/eval.txt" 2>>"$LOG"
  say "eval: rc=$? in $(($(date +%s) - t0))s (tf_exact: whole completion argmax-right; gen_found: answers in greedy output)"
  cat "$WORK/eval.txt" >>"$LOG"
  awk '{printf "%s%s", $0, (NR % 2 ? "  |  " : "\n")} END {print ""}' "$WORK/eval.txt"
  tar -C "$WORK" -cf - models | gzip -1 >"$WORK/zoo-models.tar.gz"
  sum=$(sha256sum "$WORK/zoo-models.tar.gz" | cut -d' ' -f1)
  split -b 15M -d "$WORK/zoo-models.tar.gz" "$OUT/zoo-models.tar.gz.part-"
  parts=$(ls "$OUT"/zoo-models.tar.gz.part-* | wc -l)
  say "out: zoo-models.tar.gz $(du -h "$WORK/zoo-models.tar.gz" | cut -f1) in $parts parts, sha256 $sum, total $(($(date +%s) - START))s"
  # The log is the eighth file at most.
  ((parts <= 7)) || say "out: WARNING: $parts parts; a device returns 8 files at most"
fi
rm -rf "$WORK"
