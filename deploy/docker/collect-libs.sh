#!/usr/bin/env bash
# Copies the shared libraries that the given binaries load into DEST, except the C
# runtime (the image's own glibc) and what the NVIDIA runtime provides (the driver's
# libcuda, the CUDA runtime and cuBLAS, which the worker's base image carries). Used by
# the Dockerfiles' build stages so the final stages need no -dev packages.
#   usage: deploy/docker/collect-libs.sh DEST BINARY...
set -euo pipefail
dest=$1
shift
mkdir -p "$dest"
for binary in "$@"; do
  ldd "$binary" | awk '/=> \//{print $3}' | while read -r lib; do
    case "$(basename "$lib")" in
      libc.so* | libm.so* | libdl.so* | librt.so* | libpthread.so* | ld-linux*) ;;
      libcuda.so* | libcudart.so* | libcublas.so* | libcublasLt.so*) ;;
      *) cp -Lu "$lib" "$dest/" ;;
    esac
  done
done
