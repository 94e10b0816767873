# The README's two commands: `make demo` and `make test`. Each installs what is
# missing (deploy/install-deps.sh), configures and builds, then runs.
BUILD ?= build
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all deps configure build test test-unit test-asan test-tsan demo gpu-pack clean

all: build

deps:
	@bash deploy/install-deps.sh
	@bash deploy/fetch-tokenizers.sh

# CMAKE_BUILD_PARALLEL_LEVEL: how many jobs a build run at configure time may use (the
# abseil that SF_TSAN builds with TSan).
configure: deps
	@CMAKE_BUILD_PARALLEL_LEVEL=$(JOBS) cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) \
	  > $(BUILD).configure.log 2>&1 \
	  || { cat $(BUILD).configure.log; exit 1; }
	@grep -E "^-- sparse_frontier:" $(BUILD).configure.log || true

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Every test that can run here; GPU tests report "Skipped" without a device.
test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

test-unit: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L unit

# Sanitizer builds of the CPU code, each in its own folder; every test runs and a
# sanitizer report fails it (README.md, "Tests"). SAN_CTEST_FLAGS narrows the tests,
# e.g. SAN_CTEST_FLAGS="-L 'unit|integration'".
ASAN_BUILD ?= build-asan
TSAN_BUILD ?= build-tsan
SAN_CTEST_FLAGS ?=

test-asan:
	@$(MAKE) --no-print-directory test BUILD=$(ASAN_BUILD) JOBS=$(JOBS) \
	  CMAKE_FLAGS="-DSF_ASAN=ON -DSF_WITH_CUDA=OFF $(CMAKE_FLAGS)" CTEST_FLAGS="$(SAN_CTEST_FLAGS)"

test-tsan:
	@$(MAKE) --no-print-directory test BUILD=$(TSAN_BUILD) JOBS=$(JOBS) \
	  CMAKE_FLAGS="-DSF_TSAN=ON -DSF_WITH_CUDA=OFF $(CMAKE_FLAGS)" CTEST_FLAGS="$(SAN_CTEST_FLAGS)"

demo: build
	@bash deploy/demo.sh $(BUILD)

# Builds the GPU tests and benchmarks and packs them for a GPU host (see docs/gpu.md).
gpu-pack: build
	@bash deploy/gpu-pack.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD).configure.log
