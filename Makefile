# weft: convenience wrapper around CMake + Ninja.
#
#   make demo          build weft-kv, drive it with redis-benchmark (~10 s), stop it
#   make test          bootstrap, configure build/, build everything, run ctest
#   CXX=clang++ make test   same with clang++ into build-clang/
#   make clang         = CXX=clang++ make test
#   make asan | tsan   sanitizer builds (build-asan/, build-tsan/) + ctest
#   make bench         build build/ and run every build/bench/weft-bench-*
#   make mutants       the mutant catalogue (tests/mutants/*.patch): each planted bug must make
#                      its test fail; MUTANTS=pattern runs a subset (scripts/mutants.py)
#   make test-loaded   the core suites with two CPU-burning processes beside them
#   make fuzz          libFuzzer (clang++, ASan+UBSan) on weft-kv's RESP parser and, at the
#                      same time, on its command layer, each for FUZZ_SECONDS (default 60);
#                      the parser seeded from tests/kv/corpus; fails on a crash
#   make config-doc    regenerate docs/configuration.md from the configuration schema
#   make docs          the API reference (Doxygen over include/weft/) as HTML in build/docs/;
#                      fails on an undocumented public declaration or a broken reference
#   make bench-charts  the SVG charts of docs/benchmarks.md (docs/charts/) from their committed
#                      data files (docs/charts/data/*.csv), with matplotlib
#   make format | format-check | clean
#
# A build directory is (re)configured only when needed: see scripts/configure.sh.

SHELL := /bin/bash
.DEFAULT_GOAL := test

NPROC         := $(shell nproc 2>/dev/null || echo 2)
BOOTSTRAP     ?= scripts/bootstrap.sh
CTEST_TIMEOUT ?= 600
CTEST_ARGS    ?=

# Compiler: g++ unless CXX is given (environment or command line). The C/ASM
# compiler follows it: clang++ -> clang, g++ -> gcc (version suffixes kept);
# for any other CXX, CMake picks the C compiler itself.
ifeq ($(origin CXX),default)
  CXX := g++
endif
ifneq ($(findstring clang++,$(CXX)),)
  CMAKE_CC := -DCMAKE_C_COMPILER=$(subst clang++,clang,$(CXX))
else ifneq ($(findstring g++,$(CXX)),)
  CMAKE_CC := -DCMAKE_C_COMPILER=$(subst g++,gcc,$(CXX))
else
  CMAKE_CC :=
endif

# Build directory per compiler: build/ for g++, build-clang/ for clang++,
# build-<name>/ for anything else (e.g. CXX=clang++-14 -> build-clang++-14).
ifeq ($(notdir $(CXX)),g++)
  TAG :=
else ifeq ($(notdir $(CXX)),clang++)
  TAG := -clang
else
  TAG := -$(notdir $(CXX))
endif

BUILD_DIR := build$(TAG)
ASAN_DIR  := build$(TAG)-asan
TSAN_DIR  := build$(TAG)-tsan

# CMAKE_EXTRA: more -D options for every build directory (.ci/run's clang
# stage builds no benchmarks: no test runs them, and the g++ stage builds them).
CMAKE_EXTRA  ?=
CMAKE_COMMON := -G Ninja -DCMAKE_CXX_COMPILER=$(CXX) $(CMAKE_CC) \
                -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=ON $(CMAKE_EXTRA)

CTEST := ctest --output-on-failure --no-tests=error --timeout $(CTEST_TIMEOUT) $(CTEST_ARGS)

ASAN_ENV := ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
            UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
TSAN_ENV := TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1

# TSan in gcc 12 / clang 14 cannot map its shadow memory when the kernel
# randomizes mmap with more than 28 bits (vm.mmap_rnd_bits=32 on some recent
# distributions); run the tests without ASLR there.
TSAN_WRAP := $(shell [ "$$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 0)" -gt 28 ] \
                     && echo "setarch $$(uname -m) -R")

# make fuzz: built straight with clang++ (two source files) into build-fuzz/.
FUZZ_SECONDS ?= 60
FUZZ_CXX     ?= clang++
FUZZ_DIR     := build-fuzz
FUZZ_FLAGS   := -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined \
                -fno-sanitize-recover=undefined -Wall -Wextra -Wpedantic -Werror

FORMAT_DIRS  := $(wildcard src include tests bench examples)
FORMAT_FILES  = $(shell find $(FORMAT_DIRS) -type f \( -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.c' \) 2>/dev/null | sort)

.PHONY: all demo test clang asan tsan bench format format-check clean build build-asan build-tsan

all: test

# --- configure + build ------------------------------------------------------
# scripts/configure.sh runs CMake only when the directory is unconfigured or
# its cached options differ from these; after that, Ninja re-runs CMake by
# itself when a CMakeLists.txt changes.
build:
	@$(BOOTSTRAP)
	@scripts/configure.sh $(BUILD_DIR) $(CMAKE_COMMON)
	cmake --build $(BUILD_DIR) -j $(NPROC)

build-asan:
	@$(BOOTSTRAP)
	@scripts/configure.sh $(ASAN_DIR) $(CMAKE_COMMON) -DWEFT_SANITIZE=address -DWEFT_BUILD_BENCH=OFF
	cmake --build $(ASAN_DIR) -j $(NPROC)

build-tsan:
	@$(BOOTSTRAP)
	@scripts/configure.sh $(TSAN_DIR) $(CMAKE_COMMON) -DWEFT_SANITIZE=thread -DWEFT_BUILD_BENCH=OFF
	cmake --build $(TSAN_DIR) -j $(NPROC)

# --- demo -------------------------------------------------------------------
# weft-kv on 127.0.0.1:6380 driven by the real redis-benchmark (scripts/demo.sh).
demo:
	@scripts/demo.sh

# --- test -------------------------------------------------------------------
test: build
	$(CTEST) --test-dir $(BUILD_DIR)

clang:
	$(MAKE) --no-print-directory test CXX=clang++

asan: build-asan
	env $(ASAN_ENV) $(CTEST) --test-dir $(ASAN_DIR)

tsan: build-tsan
	env $(TSAN_ENV) $(TSAN_WRAP) $(CTEST) --test-dir $(TSAN_DIR)

# docs/configuration.md is generated from the schema in src/api/config.cpp;
# weft_test_api's ConfigDoc.UpToDate fails when it is stale.
.PHONY: config-doc
config-doc:
	@$(BOOTSTRAP)
	@scripts/configure.sh $(BUILD_DIR) $(CMAKE_COMMON)
	cmake --build $(BUILD_DIR) --target weft_test_api -j $(NPROC)
	WEFT_WRITE_CONFIG_DOC=1 $(BUILD_DIR)/tests/weft_test_api --gtest_filter=ConfigDoc.UpToDate

# The API reference: Doxygen (docs/reference/Doxyfile) over the public
# headers, HTML into $(DOCS_DIR) (open index.html). WARN_AS_ERROR there: an
# undocumented public declaration or a reference Doxygen cannot resolve
# fails the target, naming file:line. Takes about a second.
DOCS_DIR ?= $(BUILD_DIR)/docs
.PHONY: docs
docs:
	@$(BOOTSTRAP)
	@rm -rf $(DOCS_DIR) && mkdir -p $(DOCS_DIR)
	( cat docs/reference/Doxyfile; echo "OUTPUT_DIRECTORY = $(DOCS_DIR)" ) | doxygen -
	@echo "docs: $(DOCS_DIR)/index.html"

# The benchmark charts: each docs/charts/data/NAME.csv (figures copied from a
# series of docs/benchmarks.md, which the file names) becomes
# docs/charts/NAME.svg (scripts/bench_charts.py). Commit both; the test
# weft_test_docs_charts fails when an SVG is stale against its data.
# Debian's python3 (/usr/bin), which has python3-matplotlib.
PYTHON3 ?= $(firstword $(wildcard /usr/bin/python3) python3)
.PHONY: bench-charts
bench-charts:
	@$(BOOTSTRAP)
	$(PYTHON3) scripts/bench_charts.py docs/charts/data docs/charts

# Runs every benchmark program in turn; fails if any fails (each exits
# non-zero on a wrong result) or if there are none.
bench: build
	@set -u; failed=""; ran=0; \
	for b in $(BUILD_DIR)/bench/weft-bench-*; do \
	  [ -f "$$b" ] && [ -x "$$b" ] || continue; \
	  ran=$$((ran + 1)); \
	  echo "== $$b"; \
	  "$$b" || { echo "!! $$b failed (exit $$?)"; failed="$$failed $$b"; }; \
	done; \
	if [ "$$ran" -eq 0 ]; then echo "bench: no $(BUILD_DIR)/bench/weft-bench-* programs found" >&2; exit 1; fi; \
	if [ -n "$$failed" ]; then echo "bench: failed:$$failed" >&2; exit 1; fi; \
	echo "bench: $$ran programs OK"

# Two libFuzzer targets, run side by side for FUZZ_SECONDS each (one core
# each, so the step takes FUZZ_SECONDS, not twice that):
#  - the RESP request parser (examples/weft-kv/fuzz_parser.cpp), built
#    straight from its two sources into $(FUZZ_DIR). Its seeds are copies of
#    tests/kv/corpus/{valid,malformed} in $(FUZZ_DIR)/seeds (libFuzzer adds
#    what it finds there, so the checked-in corpus stays as it is);
#  - the command layer (examples/weft-kv/fuzz_commands.cpp: random valid
#    commands of every type against one keyspace), which needs the weft
#    runtime and weft-kv-core compiled for fuzzing: a CMake build in
#    $(FUZZ_CMD_DIR) (clang, ASan+UBSan, -fsanitize=fuzzer-no-link).
# A crash, a leak, UB or a broken invariant stops a fuzzer with a non-zero
# exit and leaves the input in its artifacts/ directory.
FUZZ_CMD_DIR := build-fuzz-commands
FUZZ_CMD_CC  := $(subst clang++,clang,$(FUZZ_CXX))

.PHONY: fuzz fuzz-build
fuzz-build:
	@$(BOOTSTRAP)
	@mkdir -p $(FUZZ_DIR)
	$(FUZZ_CXX) $(FUZZ_FLAGS) -Iexamples/weft-kv examples/weft-kv/fuzz_parser.cpp \
	  examples/weft-kv/resp.cpp -o $(FUZZ_DIR)/fuzz_parser
	@scripts/configure.sh $(FUZZ_CMD_DIR) -G Ninja -DCMAKE_CXX_COMPILER=$(FUZZ_CXX) \
	  -DCMAKE_C_COMPILER=$(FUZZ_CMD_CC) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DWEFT_WERROR=ON \
	  -DWEFT_SANITIZE=address -DWEFT_BUILD_TESTS=OFF -DWEFT_BUILD_BENCH=OFF -DWEFT_KV_FUZZ=ON \
	  -DCMAKE_CXX_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link
	cmake --build $(FUZZ_CMD_DIR) -j $(NPROC) --target fuzz_commands

fuzz: fuzz-build
	@rm -rf $(FUZZ_DIR)/seeds && mkdir -p $(FUZZ_DIR)/seeds $(FUZZ_DIR)/artifacts
	@for kind in valid malformed; do \
	  for f in tests/kv/corpus/$$kind/*.bin; do \
	    cp "$$f" "$(FUZZ_DIR)/seeds/$${kind}_$$(basename "$$f")" || exit 1; \
	  done; \
	done
	@rm -rf $(FUZZ_CMD_DIR)/corpus && mkdir -p $(FUZZ_CMD_DIR)/corpus $(FUZZ_CMD_DIR)/artifacts
	@set -u; \
	env $(ASAN_ENV) $(FUZZ_DIR)/fuzz_parser -max_total_time=$(FUZZ_SECONDS) -timeout=30 \
	  -print_final_stats=1 -artifact_prefix=$(FUZZ_DIR)/artifacts/ $(FUZZ_DIR)/seeds \
	  > $(FUZZ_DIR)/parser.log 2>&1 & parser=$$!; \
	env $(ASAN_ENV) $(FUZZ_CMD_DIR)/examples/weft-kv/fuzz_commands -max_total_time=$(FUZZ_SECONDS) \
	  -timeout=30 -rss_limit_mb=4096 -print_final_stats=1 \
	  -artifact_prefix=$(FUZZ_CMD_DIR)/artifacts/ $(FUZZ_CMD_DIR)/corpus \
	  > $(FUZZ_CMD_DIR)/commands.log 2>&1 & commands=$$!; \
	wait $$parser; prc=$$?; wait $$commands; crc=$$?; \
	echo "== fuzz_parser (exit $$prc):"; tail -n 30 $(FUZZ_DIR)/parser.log; \
	echo "== fuzz_commands (exit $$crc):"; tail -n 30 $(FUZZ_CMD_DIR)/commands.log; \
	[ $$prc -eq 0 ] && [ $$crc -eq 0 ]

# --- test-loaded --------------------------------------------------------------
# The core suites with two CPU-burning processes beside them (scripts/test_loaded.sh).
.PHONY: test-loaded
test-loaded: build
	scripts/test_loaded.sh $(BUILD_DIR) --timeout $(CTEST_TIMEOUT) $(CTEST_ARGS)

# --- mutants ----------------------------------------------------------------
# Not part of make test or CI (it builds and runs one test per mutant); run it
# before resolving anything that touches the scheduler, the reactor or
# cancellation. Mutates the committed tree (HEAD) in build-mutants/.
MUTANTS ?=
.PHONY: mutants
mutants:
	@$(BOOTSTRAP)
	scripts/mutants.py $(if $(MUTANTS),--pattern '$(MUTANTS)') $(MUTANTS_ARGS)

# --- formatting -------------------------------------------------------------
format:
	@files="$(FORMAT_FILES)"; [ -z "$$files" ] || clang-format -i $$files

format-check:
	@files="$(FORMAT_FILES)"; [ -z "$$files" ] || clang-format --dry-run -Werror $$files

clean:
	rm -rf build build-*/
