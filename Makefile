# The commands a newcomer runs (see README.md):
#   make run    install missing Debian packages, build, start txmqd with its defaults
#   make test   install missing Debian packages, build, run every test through ctest
#   make build  install missing Debian packages and build
#   make demo   as make build, then the bank transfer example told step by step:
#               a half message, a killed producer, a check-back, an idempotent
#               redelivery, a compensation; txmqctl's view; the final balances
#   make cluster  as make build, then a replicated group on this machine:
#               one etcd and three txmqd nodes (scripts/cluster.sh); Ctrl-C stops it
#   make check-shared  a separate build (build-shared/) of the libraries as
#               shared objects; installs it and builds an app against it
#   make check-asan  a separate build (build-asan/) with AddressSanitizer and
#               UBSan; runs the fuzz replays and the fault tests (slow; not
#               part of `make test`)
BUILD_DIR  ?= build
BUILD_TYPE ?= RelWithDebInfo
JOBS       ?= 2
# Tests run four at a time: they mostly wait (sockets, timers, processes
# they start), about a third of one core at -j2. Measured on 2 cores: the
# whole suite 3m21s at -j4 against 6m27s at -j2, the same ~2 min of CPU,
# green both ways, also beside a -j2 build. CTEST_JOBS=2 for a slower box.
CTEST_JOBS ?= 4
CTEST_ARGS ?=
ASAN_DIR   ?= build-asan
SHARED_DIR ?= build-shared

.PHONY: all deps configure build run test demo cluster check-asan check-shared install clean format

all: build

deps:
	@./scripts/deps.sh

configure: deps
	@cmake -S . -B $(BUILD_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) >/dev/null

build: configure
	@cmake --build $(BUILD_DIR) -j $(JOBS)

run: build
	$(BUILD_DIR)/bin/txmqd $(ARGS)

test: build
	ctest --test-dir $(BUILD_DIR) --output-on-failure -j $(CTEST_JOBS) $(CTEST_ARGS)

demo: build
	@DEMO=1 TRANSFERS=100 CRASH_AT=37 examples/bank_transfer/run.sh $(BUILD_DIR)/bin

cluster: build
	@scripts/cluster.sh $(BUILD_DIR)/bin

# Any sanitizer report fails the test that caused it. The fault tests
# LD_PRELOAD a shim or libfaketime into txmqd, so ASan may not come first
# in the library list; that is fine for this use.
ASAN_ENV = ASAN_OPTIONS=abort_on_error=1:detect_leaks=1:verify_asan_link_order=0 \
           UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1

check-asan: deps
	@cmake -S . -B $(ASAN_DIR) -DCMAKE_BUILD_TYPE=RelWithDebInfo -DTXMQ_SANITIZE=ON \
	  -DTXMQ_BUILD_EXAMPLES=OFF >/dev/null
	@cmake --build $(ASAN_DIR) -j $(JOBS) --target txmq-fuzz-frame txmq-fuzz-records fault_tests
	$(ASAN_ENV) ctest --test-dir $(ASAN_DIR) -L '^(fuzz|fault)$$' --output-on-failure -j $(JOBS) $(CTEST_ARGS)

# The libraries as shared objects (TXMQ_SHARED_LIBS): txmqd must link them,
# and an app built against the installed prefix must run. Not part of
# `make test` (a second build of the libraries and tools).
check-shared: deps
	@cmake -S . -B $(SHARED_DIR) -DCMAKE_BUILD_TYPE=$(BUILD_TYPE) -DTXMQ_SHARED_LIBS=ON \
	  -DTXMQ_BUILD_TESTS=OFF -DTXMQ_BUILD_EXAMPLES=OFF >/dev/null
	@cmake --build $(SHARED_DIR) -j $(JOBS)
	ldd $(SHARED_DIR)/bin/txmqd | grep -q 'libtxmq_broker.so'
	tests/install/check_install.sh $(SHARED_DIR) $(CURDIR)

install: build
	cmake --install $(BUILD_DIR) --prefix $(or $(PREFIX),/usr/local)

format:
	@git ls-files '*.h' '*.cc' | xargs clang-format -i

clean:
	rm -rf $(BUILD_DIR) $(ASAN_DIR) $(SHARED_DIR)
