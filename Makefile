# Switchboard - build, run and test.
#   make            build build/switchboard
#   make run        install what is missing, build, start the broker with defaults
#   make test       install what is missing, build, run every test (unit, fuzz corpus, integration)
#   make test-reference   the integration suite against Debian's rabbitmq-server
#   make asan       unit tests and integration under ASan+UBSan
#   make fuzz       run each libFuzzer target for FUZZ_SECONDS
#   make gen / gen-check   regenerate the AMQP codec, dispatch table and embedded dashboard / check them
#   make bench      the side-by-side benchmark against RabbitMQ (long)
#   make demo       the online store example, every scenario measured (examples/shop)

CC       ?= gcc
BUILD    ?= build
OPT      ?= -O2
CFLAGS   ?= $(OPT) -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-unused-parameter -Wshadow \
            -Wstrict-prototypes -Wmissing-prototypes -fno-strict-aliasing -pthread -Isrc \
            -Werror=implicit-function-declaration
LDLIBS   += -lrabbitmq -ljansson -lmicrohttpd -lpcre2-8 -lssl -lcrypto -lpthread
PYTHON   := /usr/bin/python3

LIB_SRC  := $(sort $(filter-out src/cli/%,$(wildcard src/*/*.c)))
CLI_SRC  := $(sort $(wildcard src/cli/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(BUILD)/obj/%.o)
CLI_OBJ  := $(CLI_SRC:%.c=$(BUILD)/obj/%.o)
UNIT_SRC := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN := $(UNIT_SRC:tests/unit/%.c=$(BUILD)/tests/%)
FUZZ_SRC := $(sort $(wildcard fuzz/fuzz_*.c))
FUZZ_BIN := $(FUZZ_SRC:fuzz/%.c=$(BUILD)/fuzz/%)
FUZZ_SECONDS ?= 60

.PHONY: all run test test-unit test-integration test-reference asan fuzz gen gen-check \
        deps-build deps-test deps-reference bench clean unit-bins fuzz-bins docs docs-check

all: $(BUILD)/switchboard

deps-build:
	@tools/deps.sh build
deps-test:
	@tools/deps.sh test
deps-reference:
	@tools/deps.sh test reference

$(BUILD)/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -MMD -MP -c $< -o $@

$(BUILD)/libsb.a: $(LIB_OBJ)
	@rm -f $@
	ar rcs $@ $^

$(BUILD)/switchboard: $(CLI_OBJ) $(BUILD)/libsb.a
	$(CC) $(CFLAGS) -o $@ $(CLI_OBJ) $(BUILD)/libsb.a $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/libsb.a
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) -Itests/unit -o $@ $< $(BUILD)/libsb.a -lcmocka $(LDLIBS)

unit-bins: $(UNIT_BIN)

# libFuzzer targets are built with clang and ASan+UBSan, from objects of
# their own (not libsb.a, which gcc built without coverage). A target links
# the codec, common and store objects and the traceparent parser;
# fuzz_session (whole connections through the real broker) also the net,
# broker and session ones.
FUZZ_CFLAGS := -std=c11 -D_GNU_SOURCE -O1 -g -pthread -Isrc -fsanitize=address,undefined \
               -fno-sanitize-recover=undefined
FUZZ_LIB := $(sort $(wildcard src/common/*.c src/amqp/*.c src/store/*.c) src/broker/traceparent.c)
FUZZ_SESSION_LIB := $(sort $(FUZZ_LIB) $(wildcard src/net/*.c src/auth/*.c src/broker/*.c src/session/*.c))
FUZZ_LDLIBS := -lcrypto  # common/base64.c decodes with OpenSSL
FUZZ_OBJ = $(1:%.c=$(BUILD)/fuzz/obj/%.o)

$(BUILD)/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c $< -o $@

$(BUILD)/fuzz/%: $(BUILD)/fuzz/obj/fuzz/%.o $(call FUZZ_OBJ,$(FUZZ_LIB))
	clang $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $^ $(FUZZ_LDLIBS)

$(BUILD)/fuzz/fuzz_session: $(call FUZZ_OBJ,$(FUZZ_SESSION_LIB))
$(BUILD)/fuzz/fuzz_session: FUZZ_LDLIBS = $(LDLIBS)
.SECONDARY: $(FUZZ_SRC:%.c=$(BUILD)/fuzz/obj/%.o)

fuzz-bins: $(FUZZ_BIN)

run: deps-build $(BUILD)/switchboard
	$(BUILD)/switchboard serve

# The online store (examples/shop): builds its services, runs demo.py at full size.
.PHONY: demo
demo: deps-build deps-test $(BUILD)/switchboard
	$(MAKE) -C examples/shop OUT=$(abspath $(BUILD))/shop
	SB_BUILD=$(BUILD) $(PYTHON) examples/shop/demo.py

# Everything runs under pytest, so one summary line counts every test:
# the cmocka binaries, the fuzz corpus replay and the integration suite.
test: deps-test
	$(MAKE) all unit-bins fuzz-bins
	$(MAKE) gen-check
	$(MAKE) docs-check
	cd tests && $(PYTHON) -m pytest -q -p no:cacheprovider .

test-unit: deps-test
	$(MAKE) unit-bins
	cd tests && $(PYTHON) -m pytest -q -p no:cacheprovider test_unit_bins.py

test-integration: deps-test all
	cd tests && $(PYTHON) -m pytest -q -p no:cacheprovider integration

test-reference: deps-reference
	cd tests && SB_TARGET=rabbitmq $(PYTHON) -m pytest -q -p no:cacheprovider integration

asan: deps-test
	$(MAKE) BUILD=build-asan CC=clang \
	  OPT="-O1 -fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer" \
	  all unit-bins
	cd tests && SB_BUILD=../build-asan ASAN_OPTIONS=detect_leaks=1 \
	  $(PYTHON) -m pytest -q -p no:cacheprovider test_unit_bins.py integration

fuzz: deps-test fuzz-bins
	@for f in $(FUZZ_BIN); do n=$$(basename $$f); mkdir -p fuzz/corpus/$$n; \
	  d=; if [ -f fuzz/$$n.dict ]; then d=-dict=fuzz/$$n.dict; fi; \
	  echo "== $$n"; $$f -max_total_time=$(FUZZ_SECONDS) $$d fuzz/corpus/$$n || exit 1; done

# Generated and committed: tools/amqpgen.py writes src/amqp/methods_gen.{h,c} and
# src/session/dispatch_gen.{h,c}; tools/embed_ui.py the dashboard's files as C arrays
# (src/http/ui/ -> src/http/ui_gen.c).
gen:
	$(PYTHON) tools/amqpgen.py ../shared/spec src
	$(PYTHON) tools/embed_ui.py src/http/ui src/http/ui_gen.c

gen-check:
	@$(PYTHON) tools/amqpgen.py --check ../shared/spec src
	@$(PYTHON) tools/embed_ui.py --check src/http/ui src/http/ui_gen.c

# docs/configuration.md is generated from the option table (src/config/options.c).
docs: all
	$(BUILD)/switchboard serve --options-markdown > docs/configuration.md

docs-check: all
	@$(BUILD)/switchboard serve --options-markdown | diff -q docs/configuration.md - >/dev/null \
	  || { echo "docs/configuration.md is out of date: run 'make docs'"; exit 1; }

bench: deps-reference all
	$(PYTHON) bench/run.py

clean:
	rm -rf build build-asan

-include $(LIB_OBJ:.o=.d) $(CLI_OBJ:.o=.d) \
         $(patsubst %.c,$(BUILD)/fuzz/obj/%.d,$(FUZZ_SRC) $(FUZZ_SESSION_LIB))
