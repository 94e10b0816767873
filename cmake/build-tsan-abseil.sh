#!/usr/bin/env bash
# Builds the installed Debian abseil again with ThreadSanitizer, for SF_TSAN builds.
#
#   cmake/build-tsan-abseil.sh OUT_DIR JOBS
#
# Debian's libabsl is compiled without -fsanitize=thread, so ThreadSanitizer cannot see
# absl::Mutex, absl::CondVar or absl::Notification (their annotations are compiled in only
# under TSan) and reports races between threads that the mutex orders. This script fetches
# the source package of the installed libabsl-dev (apt-get source, through a private apt
# configuration under OUT_DIR, so the machine's own apt setup is left alone), builds the
# abseil libraries the project links (and what they need) as shared libraries with TSan
# and the same options Debian uses (C++17, Debian's patches: same SONAMEs and ABI), and
# copies them to OUT_DIR/lib. Executables of the TSan build carry that directory as their
# RPATH, so they, and gRPC inside them, load these libraries instead of the system ones.
#
# Needs: apt-get, dpkg-source (dpkg-dev), cmake, ninja, network access to the Debian
# archive the first time. The result is cached: a second run with the same abseil
# version only checks the stamp. Prints the library directory on its last line.
set -euo pipefail

out="${1:?usage: build-tsan-abseil.sh OUT_DIR JOBS}"
jobs="${2:-2}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"
lib="$out/lib"

die() {
  echo "build-tsan-abseil: $*" >&2
  exit 1
}

version="$(dpkg-query -W -f='${Version}' libabsl-dev 2>/dev/null)" ||
  die "libabsl-dev is not installed (run deploy/install-deps.sh)"
source_pkg="$(dpkg-query -W -f='${source:Package}' libabsl-dev)"
upstream="${version%%-*}"
# The abseil libraries the project links, and the random libraries gRPC links; their
# dependencies come with them. Every abseil library the process loads must be the
# instrumented one: abseil's templates (base_internal::CallOnceImpl among them) are
# instantiated in several libraries and the dynamic linker binds every use to one copy,
# so a single uninstrumented library can hide the synchronization of all.
targets=(synchronization status statusor strings str_format_internal
  time hash raw_hash_set
  random_distributions random_seed_sequences random_internal_pool_urbg
  random_internal_randen random_seed_gen_exception)

# The stamp names the package version and holds the target list: a changed list builds
# the missing libraries into the same folder.
stamp="$lib/.built-from-$source_pkg-$version"
if [[ -f "$stamp" && "$(cat "$stamp")" == "${targets[*]}" ]]; then
  echo "$lib"
  exit 0
fi

for tool in apt-get dpkg-source cmake ninja; do
  command -v "$tool" >/dev/null || die "$tool is missing (apt-get install dpkg-dev cmake ninja-build)"
done

# A private apt state: deb-src entries for the release this machine runs.
. /etc/os-release
codename="${VERSION_CODENAME:?/etc/os-release names no VERSION_CODENAME}"
apt_dir="$out/apt"
mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial"
keyring=/usr/share/keyrings/debian-archive-keyring.gpg
cat >"$apt_dir/sources.list" <<EOF
deb-src [signed-by=$keyring] http://deb.debian.org/debian $codename main
deb-src [signed-by=$keyring] http://deb.debian.org/debian $codename-updates main
deb-src [signed-by=$keyring] http://deb.debian.org/debian-security $codename-security main
EOF
apt_opts=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o "Dir::Etc::SourceParts=/nonexistent"
  -o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache" -o "Debug::NoLocking=1"
  -o "APT::Sandbox::User=$(id -un)")

src_parent="$out/src"
src="$src_parent/$source_pkg-$upstream"
if [[ ! -f "$src/CMakeLists.txt" ]]; then
  echo "build-tsan-abseil: fetching the source of $source_pkg $version from deb.debian.org" >&2
  apt-get -q "${apt_opts[@]}" update >"$out/apt-update.log" 2>&1 ||
    die "apt-get update failed (is deb.debian.org reachable?); see $out/apt-update.log"
  rm -rf "$src_parent"
  mkdir -p "$src_parent"
  (cd "$src_parent" && apt-get -q "${apt_opts[@]}" source "$source_pkg=$version") \
    >"$out/apt-source.log" 2>&1 ||
    die "apt-get source $source_pkg=$version failed; see $out/apt-source.log"
  [[ -f "$src/CMakeLists.txt" ]] || die "the source package unpacked without $src/CMakeLists.txt"
fi

echo "build-tsan-abseil: building ${targets[*]} with -fsanitize=thread (a few minutes, once)" >&2
build="$out/build"
cmake -S "$src" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_CXX_STANDARD=17 -DBUILD_SHARED_LIBS=ON -DBUILD_TESTING=OFF \
  -DCMAKE_C_FLAGS=-fsanitize=thread -DCMAKE_CXX_FLAGS=-fsanitize=thread \
  -DCMAKE_SHARED_LINKER_FLAGS=-fsanitize=thread >"$out/configure.log" 2>&1 ||
  die "configuring abseil failed; see $out/configure.log"
cmake --build "$build" -j "$jobs" --target "${targets[@]}" >"$out/build.log" 2>&1 ||
  die "building abseil with TSan failed; see $out/build.log"

# A folder from another abseil version is replaced; one from this version only gains the
# libraries it lacks (cp -u), so programs that use it meanwhile keep their files.
[[ -f "$stamp" ]] || rm -rf "$lib"
mkdir -p "$lib"
find "$build" -name "libabsl_*.so.*" -exec cp -a -u {} "$lib/" \;
[[ -f "$lib/libabsl_synchronization.so.${upstream%%.*}" ]] ||
  die "the build produced no libabsl_synchronization.so.${upstream%%.*}"
echo "${targets[*]}" >"$stamp"
echo "$lib"
