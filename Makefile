# SPDX-License-Identifier: Apache-2.0
# Thin wrapper over CMake/ctest. The README's two commands are `make demo`
# and `make test`; both install what they need (scripts/deps.sh).
BUILD ?= build
JOBS  ?= $(shell nproc)
CMAKE_FLAGS ?=

# CI (CI=true) also fuzzes every libFuzzer target for a while (tests/fuzz):
# 30 s each, the frame decoder 60 s.
ifeq ($(CI),true)
FL_FUZZ_SECONDS ?= 30
endif
ifdef FL_FUZZ_SECONDS
export FL_FUZZ_SECONDS
endif

.PHONY: all deps configure build test test-asan demo clean

all: build

deps:
	@bash scripts/deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

# Every test through ctest; ctest's summary is the last line printed.
test: build
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The same tests under ASan + UBSan in a separate tree.
test-asan:
	@$(MAKE) --no-print-directory test BUILD=build-asan CMAKE_FLAGS="-DSANITIZE=ON"

demo: build
	@bash scripts/demo.sh $(BUILD)

clean:
	rm -rf build build-asan build-fuzz build-tsan
