#!/usr/bin/env bash
# Packs the zoo's GPU run into a self-contained folder: sf-tasks-dump with the shared
# libraries it needs (the GPU host has no abseil, PCRE2 or utf8proc), the tokenizer, the
# Python recipe and run.sh (tools/zoo/run-gpu.sh), and optionally trained models to start
# from (init/<name>/: config.json, train_log.json, model.safetensors.xz; run.sh passes
# them to train.py --init). Build sf-tasks-dump first.
#   tools/zoo/make-bundle.sh BUILD_DIR TOKENIZER_DIR DEST [MODEL_DIR ...]
set -euo pipefail
build=${1:?usage: make-bundle.sh BUILD_DIR TOKENIZER_DIR DEST}
tok=${2:?usage: make-bundle.sh BUILD_DIR TOKENIZER_DIR DEST}
dest=${3:?usage: make-bundle.sh BUILD_DIR TOKENIZER_DIR DEST}
shift 3
for model in "$@"; do
  [[ -f $model/model.safetensors && -f $model/config.json ]] ||
    { echo "make-bundle: $model is not a model folder (config.json, model.safetensors)" >&2; exit 1; }
done
here=$(cd "$(dirname "$0")" && pwd)
exe=$build/cli/sf-tasks-dump
[[ -x $exe ]] || { echo "make-bundle: $exe is missing; build the sf-tasks-dump target" >&2; exit 1; }
[[ -f $tok/tokenizer.json ]] || { echo "make-bundle: no tokenizer.json in $tok" >&2; exit 1; }
rm -rf "$dest"
mkdir -p "$dest/bin" "$dest/lib" "$dest/tokenizer"
strip --strip-debug -o "$dest/bin/sf-tasks-dump" "$exe"
ldd "$exe" | awk '/=> \//{print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libgcc_s*|libstdc++*) ;;
    *) cp -L "$lib" "$dest/lib/" ;;
  esac
done
strip --strip-unneeded "$dest"/lib/*.so* 2>/dev/null || true
cp "$tok/tokenizer.json" "$tok/tokenizer_config.json" "$dest/tokenizer/"
cp "$here/zoo_model.py" "$here/train.py" "$here/eval_hf.py" "$here/train_tokenizer.py" "$dest/"
cp "$here/run-gpu.sh" "$dest/run.sh"
chmod +x "$dest/run.sh"
for model in "$@"; do
  name=$(basename "$model")
  mkdir -p "$dest/init/$name"
  cp "$model/config.json" "$dest/init/$name/"
  [[ -f $model/train_log.json ]] && cp "$model/train_log.json" "$dest/init/$name/"
  xz -T2 -6 -c "$model/model.safetensors" >"$dest/init/$name/model.safetensors.xz"
done
echo "make-bundle: $dest ($(du -sh "$dest" | cut -f1))"
