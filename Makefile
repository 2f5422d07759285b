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
# Under CI=true the whole suite first runs under ASan + UBSan (test-asan).
test: build
ifeq ($(CI),true)
	@$(MAKE) --no-print-directory test-asan
endif
	@cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# The tests under AddressSanitizer + UndefinedBehaviorSanitizer, in their own
# tree (build-asan); long fuzzing is left to the normal run, and the PBFT
# simulations run 60 seeds per test here (20 to 1,000 in the normal run) to keep
# CI well under 30 minutes.
ASAN_TESTS_ENV = ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 FL_PBFT_SEEDS=60
test-asan: deps
	@cmake -S . -B build-asan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DSANITIZE=ON >/dev/null
	@cmake --build build-asan -j$(JOBS)
	@cd build-asan && env -u FL_FUZZ_SECONDS $(ASAN_TESTS_ENV) ctest --output-on-failure -j$(JOBS) -LE fuzz-long

demo: build
	@bash scripts/demo.sh $(BUILD)

clean:
	rm -rf build build-asan build-fuzz build-tsan
