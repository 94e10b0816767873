# The README's two commands: `make demo` and `make test`. Each installs what is
# missing (deploy/install-deps.sh), configures and builds, then runs.
BUILD ?= build
CMAKE_FLAGS ?=
CTEST_FLAGS ?=
JOBS ?= $(shell nproc)

.PHONY: all deps configure build test test-unit demo gpu-pack clean

all: build

deps:
	@bash deploy/install-deps.sh
	@bash deploy/fetch-tokenizers.sh

configure: deps
	@cmake -S . -B $(BUILD) -G Ninja $(CMAKE_FLAGS) > $(BUILD).configure.log 2>&1 \
	  || { cat $(BUILD).configure.log; exit 1; }
	@grep -E "^-- sparse_frontier:" $(BUILD).configure.log || true

build: configure
	@cmake --build $(BUILD) -j $(JOBS)

# Every test that can run here; GPU tests report "Skipped" without a device.
test: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) $(CTEST_FLAGS)

test-unit: build
	@ctest --test-dir $(BUILD) --output-on-failure -j $(JOBS) -L unit

demo: build
	@bash deploy/demo.sh $(BUILD)

# Builds the GPU tests and benchmarks and packs them for a GPU host (see docs/gpu.md).
gpu-pack: build
	@bash deploy/gpu-pack.sh $(BUILD)

clean:
	rm -rf $(BUILD) $(BUILD).configure.log
