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

.PHONY: all deps configure build test test-asan test-tsan soak demo clean

all: build

deps:
	@bash scripts/deps.sh

configure: deps
	@cmake -S . -B $(BUILD) -DCMAKE_BUILD_TYPE=RelWithDebInfo $(CMAKE_FLAGS) >/dev/null

build: configure
	@cmake --build $(BUILD) -j$(JOBS)

# Every test through ctest; ctest's summary is the last line printed.
# Under CI=true the whole suite first runs under ASan + UBSan (test-asan) and
# the threaded parts' tests under ThreadSanitizer (test-tsan, ~4 minutes).
test: build
ifeq ($(CI),true)
	@$(MAKE) --no-print-directory test-asan
	@$(MAKE) --no-print-directory test-tsan
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

# The tests of the threaded parts (libuv worker pool and loop queue, RocksDB,
# nanomsg events, the chaincode runtime, the peer's validator threads, ML
# training threads, the client SDK) under ThreadSanitizer, in build-tsan.
# Any report fails the test (halt_on_error); tests/faults/tsan.supp silences
# third-party libraries only. docs/build.md.
TSAN_TESTS = test_base|test_kv|test_events|test_ccrt|test_ledger|test_client|test_crypto|test_ops|test_peer_validator|test_ml|test_net
TSAN_TARGETS = $(subst |, ,$(TSAN_TESTS)) fedledger fl_cc_kvstore
TSAN_TESTS_ENV = TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1:history_size=4:suppressions=$(CURDIR)/tests/faults/tsan.supp
test-tsan: deps
	@cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTSAN=ON >/dev/null
	@cmake --build build-tsan -j$(JOBS) --target $(TSAN_TARGETS)
	@cd build-tsan && env -u FL_FUZZ_SECONDS $(TSAN_TESTS_ENV) ctest --output-on-failure -j$(JOBS) -R '^($(TSAN_TESTS))$$'

# The soak test (tests/soak/run-soak.sh; not part of `make test`): 10 minutes
# (SOAK_SECONDS) at half the measured maximum end-to-end throughput, every
# process's RSS sampled; docs/operations.md ("Faults and soak").
soak: build
	@cmake --build $(BUILD) -j$(JOBS) --target soak_net e2e_bench
	@bash tests/soak/run-soak.sh $(BUILD)

demo: build
	@bash scripts/demo.sh $(BUILD)

clean:
	rm -rf build build-asan build-fuzz build-tsan
