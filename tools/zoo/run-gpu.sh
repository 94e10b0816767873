#!/usr/bin/env bash
# Trains and evaluates the zoo on a GPU host with torch and transformers (no build
# dependencies): the run.sh of a folder made by tools/zoo/make-bundle.sh, callable from
# any working folder. Writes to $OUT: zoo-run.log (everything) and the models in Hugging
# Face format (each with train_log.json and reference.json, plus eval.json) as
# zoo-models.tar.gz cut into 15 MiB parts zoo-models.tar.gz.part-00, -01, ... (a device
# hands back at most 8 files of at most 16 MiB); prints a short summary. Put the parts
# together with `cat zoo-models.tar.gz.part-* > zoo-models.tar.gz` and check the sha256
# that the log and the summary give.
#   OUT=/some/dir /path/to/bundle/run.sh     (ZOO_SIZES, ZOO_SCALE=0.1 for a smoke test,
#   ZOO_TRAIN_ARGS for more train.py options, e.g. "--batch-tokens 16384")
set -uo pipefail
OUT=${OUT:?set OUT to the results folder}
mkdir -p "$OUT" && OUT=$(cd "$OUT" && pwd)
cd "$(dirname "${BASH_SOURCE[0]}")" || exit 1
export LD_LIBRARY_PATH=$PWD/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
export PYTHONUNBUFFERED=1
START=$(date +%s)
LOG=$OUT/zoo-run.log
WORK=$(mktemp -d /tmp/zoo-work.XXXXXX)
SIZES=${ZOO_SIZES:-zoo-xs:35,zoo-s:55,zoo-m:90,zoo-l:170}
SCALE=${ZOO_SCALE:-1}  # fraction of the sample counts below (smoke tests)
JOBS=$(nproc)
say() { echo "$*" | tee -a "$LOG"; }
: >"$LOG"
say "zoo: $(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1), $JOBS cores, sizes $SIZES"

# 1. Samples from the project's generators. Sample seeds: training from 2^32 + L*10^6,
# held-out evaluation from 2^32 + 5*10^9 + L*10^6; evaluation sweeps use seeds below 2^32.
BASE=4294967296
PER_JOB=200
dump_jobs() {  # task length count seed_base folder [task parameter, e.g. num_queries=1]
  local task=$1 len=$2 count=$3 base=$4 dir=$5 param=${6:-} i=0 n tag=""
  [[ -n $param ]] && tag="-${param//=/}"
  count=$(python3 -c "print(max(1, int($count * $SCALE)))")
  while ((count > 0)); do
    n=$((count < PER_JOB ? count : PER_JOB))
    echo "$task $len $n $((base + len * 1000000 + i * PER_JOB)) $dir/$task-$len$tag-$i.jsonl ${param:-num_queries=4}"
    count=$((count - n)); i=$((i + 1))
  done
}
{
  for t in ruler_niah:4000 ruler_vt:2000 story_multihop:1500 story_filtering:1500; do
    dump_jobs "${t%%:*}" 1024 "${t##*:}" $BASE "$WORK/data"
    dump_jobs "${t%%:*}" 2048 "${t##*:}" $BASE "$WORK/data"
  done
  for t in ruler_niah:6000 ruler_vt:2500 ruler_cwe:2500 story_retrieval:3000 story_multihop:2000 \
           story_filtering:2000; do
    dump_jobs "${t%%:*}" 4096 "${t##*:}" $BASE "$WORK/data"
  done
  # NIAH with one key too (shorter answers: CPU demos); its own seed range.
  dump_jobs ruler_niah 2048 1000 $((BASE + 2000000000)) "$WORK/data" num_queries=1
  dump_jobs ruler_niah 4096 1500 $((BASE + 2000000000)) "$WORK/data" num_queries=1
  for t in ruler_niah ruler_vt ruler_cwe story_retrieval story_multihop story_filtering; do
    dump_jobs $t 4096 32 $((BASE + 5000000000)) "$WORK/holdout"
  done
  dump_jobs ruler_niah 4096 16 $((BASE + 6000000000)) "$WORK/holdout" num_queries=1
  dump_jobs ruler_niah 2048 16 $((BASE + 5000000000)) "$WORK/holdout"
  dump_jobs ruler_niah 8192 16 $((BASE + 5000000000)) "$WORK/holdout"
} >"$WORK/jobs.txt"
mkdir -p "$WORK/data" "$WORK/holdout"
t0=$(date +%s)
# The last field is a ruler_niah parameter (num_queries; 4 is the default); other tasks
# would reject it, so it is passed to ruler_niah only.
timeout 120 xargs -P "$JOBS" -L 1 sh -c \
  'p=""; [ "$0" = ruler_niah ] && p="-p $5"; ./bin/sf-tasks-dump "$0" --length "$1" --count "$2" --seed "$3" --ids $p --tokenizer tokenizer/tokenizer.json -o "$4" >/dev/null' \
  <"$WORK/jobs.txt" 2>>"$LOG"
dump_rc=$?
say "dump: rc=$dump_rc, $(ls "$WORK/data" | wc -l) training files ($(du -sh "$WORK/data" | cut -f1)), $(ls "$WORK/holdout" | wc -l) held-out files, $(($(date +%s) - t0))s"

# 2. Training, one size after the other, each for its wall-clock budget.
t0=$(date +%s)
# The budgets' sum plus time to load the data and save each model.
train_limit=$(echo "$SIZES" | awk -F, '{s = 60; for (i = 1; i <= NF; i++) { split($i, a, ":"); s += a[2] } printf "%d", s}')
timeout "$train_limit" python3 train.py --data "$WORK/data" --tokenizer tokenizer --out "$WORK/models" \
  --sizes "$SIZES" --print-every 200 ${ZOO_TRAIN_ARGS:-} >>"$LOG" 2>&1
say "train: rc=$? in $(($(date +%s) - t0))s"
grep -E "^(data:|trained )" "$LOG" | sed 's/^/  /'

# 3. Evaluation with transformers (teacher-forced and generated), reference logits.
t0=$(date +%s)
models=$(ls -d "$WORK"/models/zoo-* 2>/dev/null | sort -t- -k2)
if [[ -n $models ]]; then
  # Whatever is left of a 10-minute device command (about 50 s per model at 4K).
  eval_limit=$((570 - ($(date +%s) - START)))
  ((eval_limit < 60)) && eval_limit=60
  timeout "$eval_limit" python3 eval_hf.py --holdout "$WORK/holdout" --generate 6 --max-samples 32 \
    --json "$WORK/models/eval.json" $models >"$WORK/eval.txt" 2>>"$LOG"
  say "eval: rc=$? in $(($(date +%s) - t0))s (tf_exact: whole completion argmax-right; gen_found: answers in greedy output)"
  cat "$WORK/eval.txt" >>"$LOG"
  awk '{printf "%s%s", $0, (NR % 2 ? "  |  " : "\n")} END {print ""}' "$WORK/eval.txt"
  tar -C "$WORK" -czf "$WORK/zoo-models.tar.gz" models
  sum=$(sha256sum "$WORK/zoo-models.tar.gz" | cut -d' ' -f1)
  split -b 15M -d "$WORK/zoo-models.tar.gz" "$OUT/zoo-models.tar.gz.part-"
  parts=$(ls "$OUT"/zoo-models.tar.gz.part-* | wc -l)
  say "out: zoo-models.tar.gz $(du -h "$WORK/zoo-models.tar.gz" | cut -f1) in $parts parts, sha256 $sum"
  # The log is the eighth file at most.
  ((parts <= 7)) || say "out: WARNING: $parts parts; a device returns 8 files at most"
fi
rm -rf "$WORK"
