#!/usr/bin/env bash
# Installs the Debian packages the project builds and runs with, only those that are
# missing, and says what it installs. Idempotent: a second run installs nothing.
#   usage: deploy/install-deps.sh        (as root, or with sudo available)
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler protobuf-compiler-grpc libprotobuf-dev  # RPC
  libabsl-dev libyaml-cpp-dev libsqlite3-dev sqlite3                      # core
  libgtest-dev libgmock-dev                                               # tests
  clang-format         # the clang_format test: sources match .clang-format
  libeigen3-dev        # CPU reference kernels, benches
  libopenblas-dev      # CPU engine GEMMs (AVX2/AVX-512 kernels chosen at run time)
  libpcre2-dev         # tokenizer pre-tokenizer regexes (Unicode classes, lookahead)
  libutf8proc-dev      # NFC normalisation for the tokenizer
  nlohmann-json3-dev   # config.json, tokenizer.json, safetensors headers
  libcli11-dev         # sfctl's command line
  libssl-dev           # TLS: PEM checks in common/tls.cc (libgrpc-dev pulls it in too)
  openssl              # CLI for tests/data/tls/make_test_certs.sh (test certificates)
  gnuplot-nox          # analysis plots (PNG/SVG)
  wamerican            # English word list for task generators
  munge slurmctld slurmd slurm-client  # a single-node Slurm for tests/slurm_test.cc
  chromium             # analysis_test: the interactive report page in a headless browser
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all ${#packages[@]} Debian packages present"
  exit 0
fi

echo "install-deps: installing ${#missing[@]} missing Debian packages: ${missing[*]}"
sudo=""
if [[ $(id -u) -ne 0 ]]; then
  command -v sudo >/dev/null || { echo "install-deps: need root or sudo to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
echo "install-deps: done"
