#!/usr/bin/env bash
# Packs the comparison with the study's Python code into DEST/compare (default
# .device/compare): sfctl with the shared libraries it needs (except the C runtime),
# compare_study.py, run-on-gpu-host.sh, and the comparison inputs written here, so the
# GPU host needs only python3 + torch and a checkout of the study:
#   make gpu-pack; deploy/compare/pack.sh [build] [.device]   # here (gpu-pack first: it empties .device)
#   cd .device/compare && ./run-on-gpu-host.sh /path/to/sparse-frontier  # there
set -euo pipefail
build=${1:-build}
dest=$(realpath -m "${2:-.device}/compare")
here=$(cd "$(dirname "$0")" && pwd)
sfctl=$(realpath "$build/cli/sfctl" 2>/dev/null || echo "$build/cli/sfctl")
[[ -x $sfctl ]] || { echo "pack: $sfctl missing: cmake --build $build --target sfctl" >&2; exit 1; }
rm -rf "$dest"
mkdir -p "$dest/lib" "$dest/inputs"
cp "$sfctl" "$dest/"
ldd "$sfctl" | awk '/=> \//{print $3}' | while read -r lib; do
  case "$(basename "$lib")" in
    libc.so*|libm.so*|libpthread.so*|libdl.so*|librt.so*|ld-linux*|libgcc_s*|libstdc++*) ;;
    libcuda.so*|libcudart.so*|libcublas*|libcurand*|libnvidia*|libnvrtc*) ;;
    *) cp -Lu "$lib" "$dest/lib/" ;;
  esac
done
strip --strip-unneeded "$dest"/lib/*.so* "$dest/sfctl" 2>/dev/null || true
cp "$here/compare_study.py" "$here/run-on-gpu-host.sh" "$dest/"
# Inputs made here too: the GPU host can compare even if sfctl does not run there.
"$here/run-on-gpu-host.sh" --inputs-only "$dest/inputs" "$sfctl"
echo "pack: $(du -sh "$dest" | cut -f1) in $dest"
