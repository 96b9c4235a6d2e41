# Yunhan — plain GNU make (see docs/testing.md for what each target runs).
#
#   make            bin/yunhand bin/yunhan
#   make deps       install the Debian packages the build and tests need
#   make test       deps + build + every test; ends with "N passed, N failed"
#   make asan       the same tests built with ASan+UBSan in build-asan/
#   make fuzz       libFuzzer targets, FUZZ_TIME seconds each
#   make bench      benchmarks (results go to docs/benchmarks.md by hand)
#   make bench-scale  scale figures of issues #4/#5 (docs/benchmarks.md)
#   make demo       a 3-node cluster on loopback and a narrated CLI session

CC ?= gcc
BUILD ?= build
BIN ?= bin
SAN ?=
OPT ?= -O2

PKGS := libuv lmdb msgpack raft
CPPFLAGS += -D_GNU_SOURCE -I.
CFLAGS += -std=gnu11 $(OPT) -g -Wall -Wextra -Werror -Wno-format-truncation \
	  -fno-omit-frame-pointer \
	  -MMD -MP $(SAN)
LDFLAGS += $(SAN)
LDLIBS += -lraft -luv -llmdb -lmsgpackc -lcrypto -lxxhash -lzstd -ljansson -lpthread -lm

FSM_SRC := $(wildcard fsm/base/*.c) $(wildcard fsm/*.c)
WIRE_SRC := $(wildcard api/wire/*.c)
CLUSTER_SRC := $(wildcard cluster/*.c)
SERVER_SRC := $(wildcard api/server/*.c)
CLIENT_SRC := $(wildcard api/client/*.c)
TESTLIB_SRC := $(wildcard tests/lib/*.c)

obj = $(patsubst %.c,$(BUILD)/%.o,$(1))

FSM_OBJ := $(call obj,$(FSM_SRC))
WIRE_OBJ := $(call obj,$(WIRE_SRC))
CLUSTER_OBJ := $(call obj,$(CLUSTER_SRC))
SERVER_OBJ := $(call obj,$(SERVER_SRC))
CLIENT_OBJ := $(call obj,$(CLIENT_SRC))
TESTLIB_OBJ := $(call obj,$(TESTLIB_SRC))

# Everything but the two mains, in dependency order for the linker.
CORE_OBJ := $(SERVER_OBJ) $(CLIENT_OBJ) $(CLUSTER_OBJ) $(WIRE_OBJ) $(FSM_OBJ)

UNIT_SRC := $(wildcard tests/unit/test_*.c)
UNIT_BIN := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRC))
FUZZ_SRC := $(wildcard tests/fuzz/fuzz_*.c)
REPLAY_BIN := $(patsubst tests/fuzz/%.c,$(BUILD)/tests/replay_%,$(FUZZ_SRC))

.PHONY: all deps test check asan fuzz bench bench-scale demo clean format \
	format-check \
	unit jepsen jepsen-quick check-includes

all: $(BIN)/yunhand $(BIN)/yunhan

$(BUILD)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c $< -o $@

$(BIN)/yunhand: $(BUILD)/api/yunhand.o $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(LDLIBS) -o $@

$(BIN)/yunhan: $(BUILD)/api/yunhan.o $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(LDFLAGS) $(filter %.o,$^) $(LDLIBS) -o $@

$(BUILD)/tests/test_%: tests/unit/test_%.c $(TESTLIB_OBJ) $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) $(LDLIBS) -lcmocka -o $@

# Fuzz targets built without libFuzzer: a main() that replays the corpus.
$(BUILD)/tests/replay_fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay_main.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) $(LDLIBS) -o $@

$(BUILD)/tests/bench_%: tests/bench/bench_%.c $(CORE_OBJ)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(filter %.c %.o,$^) $(LDLIBS) -o $@

unit: $(UNIT_BIN) $(REPLAY_BIN)

deps:
	@tests/env/deps.sh

# The test suite: unit (cmocka), fuzz-corpus replay, integration on real
# processes, jepsen-quick. tests/run.sh prints the final "N passed, N failed".
test: deps
	@$(MAKE) --no-print-directory all unit
	@BUILD=$(BUILD) BIN=$(BIN) tests/run.sh

check: test check-includes format-check

asan:
	@tests/env/deps.sh
	@$(MAKE) --no-print-directory BUILD=build-asan BIN=build-asan/bin OPT=-O1 \
	    SAN="-fsanitize=address,undefined -fno-sanitize-recover=all" all unit
	@BUILD=build-asan BIN=build-asan/bin YH_SANITIZED=1 \
	    ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 \
	    UBSAN_OPTIONS=print_stacktrace=1 tests/run.sh

FUZZ_TIME ?= 30
fuzz:
	@tests/env/deps.sh
	@tests/fuzz/run.sh $(FUZZ_TIME)

bench: all $(BUILD)/tests/bench_snapshot
	@BUILD=$(BUILD) tests/bench/run.sh

# SCALE_ONLY=api|state|ipam|sg runs one part (see tests/bench/scale.sh).
bench-scale: all $(BUILD)/tests/bench_scale
	@BUILD=$(BUILD) tests/bench/scale.sh

demo: deps all
	@tests/env/demo.sh

jepsen-quick: all
	@jepsen/run.sh --quick

jepsen: all
	@jepsen/run.sh --full

check-includes:
	@tests/env/check-includes.sh

# Positive controls for jepsen (jepsen/run.sh --positive-control): yunhand
# built with a deliberate safety bug, in their own build dirs. Never ship.
yunhand-unsafe:
	@$(MAKE) --no-print-directory BUILD=build-unsafe-stale \
	    BIN=build-unsafe-stale/bin \
	    CPPFLAGS="-D_GNU_SOURCE -I. -DYH_UNSAFE_STALE_READS" \
	    build-unsafe-stale/bin/yunhand
	@mkdir -p $(BIN)
	cp build-unsafe-stale/bin/yunhand $(BIN)/yunhand-unsafe-stale
	@$(MAKE) --no-print-directory BUILD=build-unsafe-nodedup \
	    BIN=build-unsafe-nodedup/bin \
	    CPPFLAGS="-D_GNU_SOURCE -I. -DYH_UNSAFE_NO_DEDUP" \
	    build-unsafe-nodedup/bin/yunhand
	cp build-unsafe-nodedup/bin/yunhand $(BIN)/yunhand-unsafe-nodedup

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build build-asan build-fuzz build-dev build-unsafe-stale build-unsafe-nodedup bin

-include $(shell find $(BUILD) -name '*.d' 2>/dev/null)
