# ghost-scx: one entry point.
#
#   make deps    install the toolchain from Debian (root; idempotent)
#   make         BPF objects -> skel/*.skel.h -> static binaries in build/
#   make test    host unit tests (also under ASan+UBSan), then the sched_ext VM scenarios
#   make sanitize  the unit tests built with ASan+UBSan in build-san/, and run
#   make soak    the long fault runs (20 kill -9 and 20 live upgrades under load)
#   make demo    boot the test kernel in qemu and run the demo workload
#   make bench   benchmarks (host and VM); results go to docs/BENCHMARKS.md
#   make mutants deliberate breaks of the class's checks must fail their tests
#   make vmlinux regenerate vmlinux/vmlinux.h from the test kernel's BTF
#   make peers   build the kernel's example sched_ext schedulers for the guest (cached)
#   make install the binaries, the systemd unit and its config (PREFIX, DESTDIR);
#                make uninstall takes them away (docs/OPERATING.md)
#
# Sources are found by wildcard, so adding a file needs no Makefile edit:
#   bpf/progs/NAME.bpf.c        -> skel/NAME.skel.h
#   userspace/**/*.cc           -> build/libghost.a (except userspace/bin/)
#   userspace/bin/ghost_X.cc    -> build/ghost-X
#   tests/unit/*_test.cc        -> build/unit_tests (one GoogleTest binary)
#   tests/vm/bin/*.cc           -> build/vm/NAME (static, run inside the guest)
#   tests/bench/*.cc            -> build/bench/NAME (host, Google Benchmark)

CXX      ?= g++
CLANG    ?= clang-19
BPFTOOL  ?= bpftool
BUILD    ?= build

ARCH_DEFS := -D__TARGET_ARCH_x86
BPF_CFLAGS := -target bpf -g -O2 -mcpu=v3 -fms-extensions -Wno-microsoft-anon-tag \
              $(ARCH_DEFS) -Wall -Werror -I. -Ivmlinux -Ibpf/progs
CXXFLAGS ?= -O2 -g
CXXFLAGS += -std=c++20 -Wall -Wextra -Werror -Wno-unused-parameter \
            -Wno-missing-field-initializers -I. -MMD -MP

ABSL_MODS := absl_flags absl_flags_parse absl_flags_usage absl_status absl_statusor \
             absl_strings absl_str_format absl_time absl_synchronization \
             absl_random_random absl_raw_hash_set absl_hash absl_cleanup
ABSL_LIBS := $(shell pkg-config --static --libs $(ABSL_MODS) 2>/dev/null)
# Everything runs in a busybox initramfs too, so binaries are fully static.
HOST_LIBS := -Wl,--start-group $(ABSL_LIBS) -lbpf -lelf -lz -lzstd -Wl,--end-group -lpthread
STATIC_LIBS := -static $(HOST_LIBS)
GTEST_LIBS := -lgmock -lgtest -lgtest_main

BPF_SRCS  := $(wildcard bpf/progs/*.bpf.c)
BPF_OBJS  := $(patsubst bpf/progs/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS     := $(patsubst bpf/progs/%.bpf.c,skel/%.skel.h,$(BPF_SRCS))
BPF_HDRS  := $(wildcard bpf/progs/*.h) $(wildcard kernel/*.h) vmlinux/vmlinux.h

LIB_SRCS  := $(filter-out userspace/bin/%,$(shell find userspace -name '*.cc' | sort))
LIB_OBJS  := $(patsubst %.cc,$(BUILD)/obj/%.o,$(LIB_SRCS))
BIN_SRCS  := $(wildcard userspace/bin/*.cc)
BINS      := $(patsubst userspace/bin/%.cc,$(BUILD)/%,$(subst _,-,$(BIN_SRCS)))
TEST_SRCS := $(wildcard tests/unit/*.cc)
TEST_OBJS := $(patsubst %.cc,$(BUILD)/obj/%.o,$(TEST_SRCS))
VMBIN_SRCS := $(wildcard tests/vm/bin/*.cc)
VMBINS    := $(patsubst tests/vm/bin/%.cc,$(BUILD)/vm/%,$(VMBIN_SRCS))
BENCH_SRCS := $(wildcard tests/bench/*.cc)
BENCHES   := $(patsubst tests/bench/%.cc,$(BUILD)/bench/%,$(BENCH_SRCS))

# `make V=1` shows every command.
ifeq ($(V),1)
Q :=
msg = @true
else
Q := @
msg = @printf '  %-8s %s\n' $(1) $(2)
endif

.PHONY: all deps test unit-test vm-test soak demo bench mutants vmlinux kernel peers clean \
        install uninstall figures
.DELETE_ON_ERROR:
.SECONDARY:

all: $(BINS) $(VMBINS)

deps:
	@bash scripts/deps.sh

# --- BPF ------------------------------------------------------------------
$(BUILD)/bpf/%.bpf.o: bpf/progs/%.bpf.c $(BPF_HDRS)
	@mkdir -p $(@D)
	$(call msg,BPF,$@)
	$(Q)$(CLANG) $(BPF_CFLAGS) -c $< -o $@

# bpftool 7.5 emits a `map->link` line that only libbpf >= 1.5 knows; with
# 1.4.6 the struct_ops link is made by bpf_map__attach_struct_ops instead.
# `gen object` links and drops DWARF (BTF stays): the embedded object shrinks ~20x.
skel/%.skel.h: $(BUILD)/bpf/%.bpf.o
	@mkdir -p $(@D)
	$(call msg,SKEL,$@)
	$(Q)$(BPFTOOL) gen object $(BUILD)/bpf/$*.linked.o $<
	$(Q)$(BPFTOOL) gen skeleton $(BUILD)/bpf/$*.linked.o name $(subst -,_,$*)_bpf > $@.tmp
	$(Q)sed -i '/map->link = /d' $@.tmp
	$(Q)mv $@.tmp $@

# --- C++ ------------------------------------------------------------------
# Every object waits for the skeletons on a clean build; -MMD tracks the rest.
$(BUILD)/obj/%.o: %.cc | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CXX,$<)
	$(Q)$(CXX) $(CXXFLAGS) -c $< -o $@

$(BUILD)/libghost.a: $(LIB_OBJS)
	@mkdir -p $(@D)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(BUILD)/ghost-%: $(BUILD)/obj/userspace/bin/ghost_%.o $(BUILD)/libghost.a
	$(call msg,LD,$@)
	$(Q)$(CXX) $(CXXFLAGS) -o $@ $^ $(STATIC_LIBS)

$(BUILD)/vm/%: $(BUILD)/obj/tests/vm/bin/%.o $(BUILD)/libghost.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CXX) $(CXXFLAGS) -o $@ $^ $(STATIC_LIBS)

$(BUILD)/unit_tests: $(TEST_OBJS) $(BUILD)/libghost.a
	$(call msg,LD,$@)
	$(Q)$(CXX) $(CXXFLAGS) -o $@ $^ $(GTEST_LIBS) $(HOST_LIBS)

$(BUILD)/bench/%: $(BUILD)/obj/tests/bench/%.o $(BUILD)/libghost.a
	@mkdir -p $(@D)
	$(call msg,LD,$@)
	$(Q)$(CXX) $(CXXFLAGS) -o $@ $^ -lbenchmark $(HOST_LIBS)

# --- sanitizers ---------------------------------------------------------------
# The unit tests again, with AddressSanitizer and UndefinedBehaviorSanitizer
# (and libstdc++'s bounds assertions), in their own directory. gcc refuses
# -static with ASan: this binary links the shared Abseil and libbpf
# (GoogleTest's archives, uninstrumented, are fine). Any finding aborts the
# run (tests/sanitize.sh sets the runtime options).
SAN_BUILD ?= build-san
SAN_FLAGS := -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer \
             -fno-sanitize-recover=all -D_GLIBCXX_ASSERTIONS
SAN_CXXFLAGS = $(filter-out -O%,$(CXXFLAGS)) -O1 $(SAN_FLAGS)
SAN_LIB_OBJS := $(patsubst %.cc,$(SAN_BUILD)/obj/%.o,$(LIB_SRCS))
SAN_TEST_OBJS := $(patsubst %.cc,$(SAN_BUILD)/obj/%.o,$(TEST_SRCS))

$(SAN_BUILD)/obj/%.o: %.cc | $(SKELS)
	@mkdir -p $(@D)
	$(call msg,CXX-SAN,$<)
	$(Q)$(CXX) $(SAN_CXXFLAGS) -c $< -o $@

$(SAN_BUILD)/libghost.a: $(SAN_LIB_OBJS)
	$(call msg,AR,$@)
	$(Q)rm -f $@ && ar rcs $@ $^

$(SAN_BUILD)/unit_tests: $(SAN_TEST_OBJS) $(SAN_BUILD)/libghost.a
	$(call msg,LD,$@)
	$(Q)$(CXX) $(SAN_CXXFLAGS) -o $@ $^ $(GTEST_LIBS) $(HOST_LIBS)

.PHONY: sanitize
sanitize: $(SAN_BUILD)/unit_tests
	@BUILD_SAN=$(SAN_BUILD) bash tests/sanitize.sh

# --- tests, demo, bench ------------------------------------------------------
test: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all $(BUILD)/unit_tests $(SAN_BUILD)/unit_tests
	@bash tests/run.sh

unit-test: $(BUILD)/unit_tests
	$(BUILD)/unit_tests

vm-test: all
	@bash tests/run.sh --vm-only

# Not part of `make test`: about an hour on a 2-core host (docs/AGENT_LIFECYCLE.md
# keeps the last result).
soak: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@bash tests/soak.sh

demo: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all
	@bash scripts/demo.sh

# Deliberate breaks of the class's checks, each run against the scenarios that
# must catch it (scripts/mutants.sh, tests/mutants/); not part of `make test`.
mutants: deps
	@bash scripts/mutants.sh

bench: deps
	@$(MAKE) --no-print-directory -j$$(nproc) all $(BENCHES)
	@bash scripts/bench.sh

# The paper's figures from the simulator: CSV and PNG in docs/figures/ (scripts/figures.sh).
figures: $(BUILD)/ghost-sim
	@bash scripts/figures.sh

kernel:
	@bash scripts/kernel.sh

# scx_simple, scx_central, scx_userland from Debian's linux-source (scripts/peers.sh).
peers: deps
	@bash scripts/peers.sh

vmlinux:
	bash vmlinux/gen.sh "$$(bash scripts/kernel.sh)" vmlinux/vmlinux.h

# --- install -----------------------------------------------------------------
# `make install [PREFIX=/usr/local] [DESTDIR=stage]`. The config lives in /etc
# whatever PREFIX is (where the unit reads it); /usr/local/lib/systemd/system
# is on systemd's own search path. An existing config is never overwritten,
# and uninstall keeps one an operator edited.
PREFIX     ?= /usr/local
BINDIR     ?= $(PREFIX)/bin
UNITDIR    ?= $(PREFIX)/lib/systemd/system
SYSCONFDIR ?= /etc
INSTALL_BINS := ghost-agent ghost-run ghost-sim ghost-bench
UNIT := $(DESTDIR)$(UNITDIR)/ghost-agent.service
CONF := $(DESTDIR)$(SYSCONFDIR)/ghost-scx/ghost-agent.conf

install: $(addprefix $(BUILD)/,$(INSTALL_BINS))
	install -d -m 0755 $(DESTDIR)$(BINDIR) $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSCONFDIR)/ghost-scx
	install -m 0755 $^ $(DESTDIR)$(BINDIR)/
	sed -e 's|@BINDIR@|$(BINDIR)|g' -e 's|@SYSCONFDIR@|$(SYSCONFDIR)|g' \
	    deploy/systemd/ghost-agent.service.in > $(UNIT).tmp
	chmod 0644 $(UNIT).tmp && mv $(UNIT).tmp $(UNIT)
	@if [ -e $(CONF) ]; then echo "install: kept the existing $(CONF)"; \
	 else install -m 0644 deploy/systemd/ghost-agent.conf $(CONF); fi

uninstall:
	rm -f $(addprefix $(DESTDIR)$(BINDIR)/,$(INSTALL_BINS)) $(UNIT)
	@if cmp -s deploy/systemd/ghost-agent.conf $(CONF); then \
	   rm -f $(CONF) && rmdir --ignore-fail-on-non-empty $(DESTDIR)$(SYSCONFDIR)/ghost-scx; \
	 elif [ -e $(CONF) ]; then echo "uninstall: kept $(CONF) (edited)"; fi

clean:
	rm -rf $(BUILD) $(SAN_BUILD) skel/*.skel.h

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)
-include $(shell find $(SAN_BUILD)/obj -name '*.d' 2>/dev/null)
