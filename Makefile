# Tessera — the one entry point. `make help` lists what it does.
#
# Composition: Kconfiglib turns configs/<app>_defconfig (+ FRAGMENTS) into
# $(BUILD)/.config; every folder under libs/ whose CONFIG_LIB_<NAME> is y has
# its lib.mk included (discovery by folder, no central list); support/gen.py
# renders the Jinja2 templates (linker script, init table, manifest, QEMU
# launch description); objects and the image go to $(BUILD) only.

APP       ?= helloworld
BUILD     ?= build/$(APP)
FRAGMENTS ?=
CROSS_COMPILE ?= riscv64-linux-gnu-
PYTHON    := /usr/bin/python3
V         ?= 0

CXX     := $(CROSS_COMPILE)g++
OBJCOPY := $(CROSS_COMPILE)objcopy
SIZE    := $(CROSS_COMPILE)size

ARCH := riscv64
PLAT := qemu-virt

ifeq ($(V),1)
Q :=
say = @true
else
Q := @
say = @printf '  %-7s %s\n' '$(1)' '$(2)'
MAKEFLAGS += --no-print-directory
endif

.DEFAULT_GOAL := all
.SUFFIXES:
.DELETE_ON_ERROR:
FORCE:
.PHONY: FORCE all run gdb test bench bench-ab clean distclean help deps boot-order \
        defconfig olddefconfig savedefconfig menuconfig

KCONFIG = $(PYTHON) support/kconfig.py
APPS := $(patsubst apps/%/Kconfig,%,$(wildcard apps/*/Kconfig))

# Goals that neither read a configuration nor need the cross toolchain.
NOCONFIG_GOALS := help clean distclean deps test bench bench-ab defconfig menuconfig \
                  olddefconfig savedefconfig
GOALS := $(or $(MAKECMDGOALS),all)
NEED_CONFIG := $(filter-out $(NOCONFIG_GOALS),$(GOALS))
NEED_DEPS := $(filter-out help clean distclean deps,$(GOALS))

# ---------------------------------------------------------------- checks ----
ifneq ($(filter-out help clean distclean test bench bench-ab deps,$(GOALS)),)
ifeq ($(wildcard apps/$(APP)/Kconfig),)
$(error unknown app '$(APP)' (no apps/$(APP)/Kconfig); available apps: $(APPS))
endif
endif

# Installing missing Debian packages is part of every real goal, so a fresh
# machine needs nothing but `make run`. Fast when all are present.
ifneq ($(NEED_DEPS),)
ifneq ($(NO_DEPS),1)
DEPS_OK := $(shell sh support/install-deps.sh 1>&2 && echo ok)
ifneq ($(DEPS_OK),ok)
$(error could not install the build dependencies (see above))
endif
endif
endif

ifneq ($(NEED_CONFIG),)
ifeq ($(shell command -v $(CXX)),)
$(error cross compiler '$(CXX)' not found: install it with 'apt-get install g++-riscv64-linux-gnu' (or 'make deps'), or point CROSS_COMPILE at a riscv64 lp64d toolchain)
endif
endif

# ---------------------------------------------------------------- config ----
CONFIG      := $(BUILD)/.config
AUTOCONF    := $(BUILD)/include/generated/autoconf.h
AUTOCONF_MK := $(BUILD)/auto.conf
KCONFIG_FILES := Kconfig $(wildcard arch/Kconfig arch/*/Kconfig plat/Kconfig plat/*/Kconfig \
                 libs/*/Kconfig) apps/$(APP)/Kconfig
FRAG_ARGS := $(foreach f,$(FRAGMENTS),--fragment $(f))
DEFCONFIG_FILE := $(wildcard configs/$(APP)_defconfig)

# FRAGMENTS given to a build goal: the configuration is rebuilt from the
# defconfig plus these fragments whenever the list (or a fragment) changes.
# A later plain `make` keeps the current .config (fragments, menuconfig
# edits and all); `make defconfig` returns to the app's defaults.
$(foreach f,$(FRAGMENTS),$(if $(wildcard $(f)),,$(error config fragment '$(f)' does not exist)))
ifneq ($(FRAGMENTS),)
FRAG_STAMP := $(BUILD)/fragments.list
ifneq ($(file <$(FRAG_STAMP)),$(FRAGMENTS))
$(shell mkdir -p $(BUILD))
$(file >$(FRAG_STAMP),$(FRAGMENTS))
endif
endif

defconfig:
	$(call say,CONFIG,$(APP) from $(or $(DEFCONFIG_FILE),defaults) $(FRAGMENTS))
	$(Q)$(KCONFIG) defconfig --app $(APP) --config $(CONFIG) $(FRAG_ARGS)
	@printf '%s\n' '$(FRAGMENTS)' > $(BUILD)/fragments.list

olddefconfig:
	$(Q)$(KCONFIG) olddefconfig --app $(APP) --config $(CONFIG)

savedefconfig:
	$(Q)$(KCONFIG) savedefconfig --app $(APP) --config $(CONFIG) --out $(BUILD)/defconfig
	@echo "  (copy it to configs/$(APP)_defconfig to make it the app's default)"

menuconfig:
	@test -f $(CONFIG) || $(KCONFIG) defconfig --app $(APP) --config $(CONFIG) $(FRAG_ARGS)
	$(Q)$(KCONFIG) menuconfig --app $(APP) --config $(CONFIG)

# Configuration happens while make reads this file, not in recipes: a bad
# configuration then stops make with the configurator's own message and a
# single "Stop" line, before anything is built.
#   .config is (re)made from the defconfig + FRAGMENTS when missing, or when
#   the defconfig, a fragment or the fragment list is newer than it;
#   auto.conf/autoconf.h are regenerated when .config or any Kconfig changed.
newer_than = $(if $(wildcard $(2)),$(if $(strip $(1)),$(shell find $(1) -newer $(2) 2>/dev/null | head -n 1)),missing)
# Adding or deleting a library folder changes the set of Kconfig files
# without making any remaining one newer: record the set, so that a change
# counts as a Kconfig change (options of a deleted library are dropped).
KCONFIG_SET := $(BUILD)/kconfig-files.list
ifneq ($(NEED_CONFIG),)
ifneq ($(file <$(KCONFIG_SET)),$(sort $(KCONFIG_FILES)))
ifeq ($(wildcard $(KCONFIG_SET)),)
# First record for this build folder: nothing changed, so date it in the
# past (it must not make a hand-edited .config look older than Kconfig).
$(shell mkdir -p $(BUILD))
$(file >$(KCONFIG_SET),$(sort $(KCONFIG_FILES)))
$(shell touch -d @0 $(KCONFIG_SET))
else
$(file >$(KCONFIG_SET),$(sort $(KCONFIG_FILES)))
endif
endif
ifneq ($(call newer_than,$(DEFCONFIG_FILE) $(FRAGMENTS) $(FRAG_STAMP),$(CONFIG)),)
$(info $(shell printf '  %-7s %s' CONFIG '$(APP) from $(or $(DEFCONFIG_FILE),defaults) $(FRAGMENTS)'))
ifneq ($(shell $(KCONFIG) defconfig --app $(APP) --config $(CONFIG) $(FRAG_ARGS) 1>&2 && echo ok),ok)
$(error configuration of '$(APP)' failed (see above))
endif
endif
ifneq ($(call newer_than,$(CONFIG) $(KCONFIG_FILES) $(KCONFIG_SET),$(AUTOCONF_MK)),)
ifneq ($(shell $(KCONFIG) genconfig --app $(APP) --config $(CONFIG) --header $(AUTOCONF) --makeconf $(AUTOCONF_MK) --kconfig-set $(KCONFIG_SET) 1>&2 && touch $(AUTOCONF_MK) && echo ok),ok)
$(error configuration of '$(APP)' failed (see above))
endif
endif
include $(AUTOCONF_MK)
endif

# ------------------------------------------------------------- components ----
# `uc` upper-cases a library folder name into its Kconfig symbol suffix.
uc = $(subst -,_,$(subst z,Z,$(subst y,Y,$(subst x,X,$(subst w,W,$(subst v,V,$(subst u,U,$(subst t,T,$(subst s,S,$(subst r,R,$(subst q,Q,$(subst p,P,$(subst o,O,$(subst n,N,$(subst m,M,$(subst l,L,$(subst k,K,$(subst j,J,$(subst i,I,$(subst h,H,$(subst g,G,$(subst f,F,$(subst e,E,$(subst d,D,$(subst c,C,$(subst b,B,$(subst a,A,$(1))))))))))))))))))))))))))))

ALL_LIBS := $(patsubst libs/%/lib.mk,%,$(wildcard libs/*/lib.mk))
ENABLED_LIBS := $(foreach l,$(ALL_LIBS),$(if $(filter y,$(CONFIG_LIB_$(call uc,$(l)))),$(l)))

# A component's make fragment fills SRCS-y, TESTS-y (built with ktest), USES
# (libraries whose headers it includes) and INIT (its init steps, each with
# INIT-AFTER-<step>). Paths are relative to the component's folder.
# Compiler flags: KERNEL_CXXFLAGS-y applies to every object of the image
# (e.g. a sanitizer), CXXFLAGS-$(LIBDIR)/<file> to one source, after all
# others so it can override them (e.g. not instrumenting the sanitizer's own
# handlers). LIBDIR is the component's folder while its fragment is read.
KERNEL_CXXFLAGS-y :=
define add_component # name, dir, fragment
SRCS-y :=
TESTS-y :=
USES :=
INIT :=
LIBDIR := $(2)
include $(2)/$(3)
$(1).dir   := $(2)
$(1).srcs  := $$(addprefix $(2)/,$$(SRCS-y) $$(if $$(filter y,$$(CONFIG_LIB_KTEST)),$$(TESTS-y)))
$(1).uses  := $$(sort base klog lockdep $$(USES) $$(if $$(filter y,$$(CONFIG_LIB_KTEST)),ktest))
$(1).init  := $$(INIT)
COMPONENTS += $(1)
endef

COMPONENTS :=
ifneq ($(NEED_CONFIG),)
$(eval $(call add_component,arch,arch/$(ARCH),arch.mk))
$(eval $(call add_component,plat,plat/$(PLAT),plat.mk))
$(foreach l,$(ENABLED_LIBS),$(eval $(call add_component,$(l),libs/$(l),lib.mk)))
$(eval $(call add_component,app,apps/$(APP),app.mk))
endif

# ------------------------------------------------------------------ flags ----
OPT := $(if $(CONFIG_OPTIMIZE_OS),-Os,$(if $(CONFIG_OPTIMIZE_OG),-Og,-O2))
ARCHFLAGS := -march=rv64gc -mabi=lp64d -mcmodel=medany
CXXFLAGS := -std=c++20 $(ARCHFLAGS) $(OPT) -g -ffreestanding -fno-exceptions -fno-rtti \
	-fno-pic -fno-pie -fno-common -ffunction-sections -fdata-sections \
	-fno-asynchronous-unwind-tables -fno-unwind-tables -fno-use-cxa-atexit \
	-fno-stack-protector -nostdlib \
	$(if $(CONFIG_FRAME_POINTERS),-fno-omit-frame-pointer) \
	-Wall -Wextra -Wno-unused-parameter $(if $(CONFIG_WERROR),-Werror) \
	-include $(AUTOCONF) -I$(BUILD)/include -Iarch/$(ARCH)/include -Iplat/$(PLAT)/include

# Each component sees its own include/ and those of the libraries it USES.
incs = -I$($(1).dir)/include $(foreach u,$($(1).uses),-Ilibs/$(u)/include)

# --------------------------------------------------------------- objects ----
# An object is rebuilt when its source, an included header (.d files) or its
# command line (.cmd files) changes.
cmd_changed = $(if $(subst x$(strip $(2)),,x$(strip $(file <$(1).cmd))),FORCE)

OBJS :=
define compile_rule # source, component
OBJ := $(BUILD)/obj/$(basename $(1)).o
CMD.$$(OBJ) := $(CXX) $(CXXFLAGS) $(KERNEL_CXXFLAGS-y) $(call incs,$(2)) $(CXXFLAGS-$(1)) -c -o $$(OBJ) $(1)
$$(OBJ): $(1) $$(call cmd_changed,$$(OBJ),$$(CMD.$$(OBJ))) | $(GEN_FILES)
	$$(call say,CXX,$$<)
	@mkdir -p $$(@D)
	$$(Q)$$(CMD.$$@) -MMD -MP -MF $$@.d
	@printf '%s\n' '$$(CMD.$$@)' > $$@.cmd
OBJS += $$(OBJ)
endef

GEN := $(BUILD)/gen
GEN_FILES := $(GEN)/linker.ld $(GEN)/init_table.cpp $(GEN)/manifest.cpp $(BUILD)/qemu.json $(BUILD)/run.sh
GEN_SRCS := $(GEN)/init_table.cpp $(GEN)/manifest.cpp
gen.dir := $(GEN)
gen.uses := base klog

$(foreach c,$(COMPONENTS),$(foreach s,$($(c).srcs),$(eval $(call compile_rule,$(s),$(c)))))
$(foreach s,$(GEN_SRCS),$(eval $(call compile_rule,$(s),gen)))

-include $(OBJS:.o=.o.d)

# --------------------------------------------------------------- generate ----
empty :=
space := $(empty) $(empty)
comma := ,
INIT_STEPS := $(foreach c,$(COMPONENTS),$(foreach s,$($(c).init),$(c)/$(s):$(subst $(space),$(comma),$(strip $(INIT-AFTER-$(s))))))
GEN_ARGS := --app $(APP) --build $(BUILD) --config $(AUTOCONF_MK) --cross-compile $(CROSS_COMPILE) \
	--libs "$(ENABLED_LIBS)" $(foreach s,$(INIT_STEPS),--step $(s))

$(GEN_FILES) &: support/gen.py $(wildcard support/templates/* plat/$(PLAT)/templates/*) FORCE
	$(Q)$(PYTHON) support/gen.py generate $(GEN_ARGS)

boot-order:
	@$(PYTHON) support/gen.py boot-order $(GEN_ARGS)

# ------------------------------------------------------------------ image ----
ELF := $(BUILD)/$(APP).elf
LDFLAGS := $(ARCHFLAGS) -nostdlib -static -no-pie -Wl,--gc-sections -Wl,--build-id=none \
	-Wl,-T,$(GEN)/linker.ld -Wl,-Map,$(BUILD)/$(APP).map -Wl,--no-warn-rwx-segments
LINK_CMD := $(CXX) $(LDFLAGS) -o $(ELF) $(OBJS) -lgcc

$(ELF): $(OBJS) $(GEN)/linker.ld $(call cmd_changed,$(ELF),$(LINK_CMD))
	$(call say,LD,$@)
	$(Q)$(LINK_CMD)
	@printf '%s\n' '$(LINK_CMD)' > $@.cmd
	$(Q)$(PYTHON) support/compile_db.py $(BUILD) $(OBJS)

$(BUILD)/$(APP).bin: $(ELF)
	$(call say,OBJCOPY,$@)
	$(Q)$(OBJCOPY) -O binary $< $@

all: $(ELF) $(BUILD)/$(APP).bin
	@$(SIZE) $(ELF) | tail -1 | awk '{printf "  SIZE    text %s  data %s  bss %s  (%s)\n", $$1, $$2, $$3, "$(ELF)"}'

# ------------------------------------------------------------------- run ----
run: all
	@echo "  RUN     $(APP) (Ctrl-A X quits)"
	@$(BUILD)/run.sh

gdb: all
	@$(BUILD)/run.sh --gdb

# ----------------------------------------------------------- test / bench ----
# QEMU instances are independent, so the suite runs one worker per core.
PYTEST_JOBS ?= auto
test:
	@$(PYTHON) -m pytest test -n $(PYTEST_JOBS) $(PYTEST_ARGS)

bench:
	@$(PYTHON) support/bench.py

# Two builds of tcpecho compared through SLIRP in alternating boots.
PAIRS ?= 6
bench-ab:
	@$(if $(and $(A),$(B)),,$(error usage: make bench-ab A=<build dir> B=<build dir> [PAIRS=n]))
	@$(PYTHON) support/bench_ab.py $(A) $(B) --pairs $(PAIRS)

deps:
	@sh support/install-deps.sh

clean:
	rm -rf $(BUILD)

distclean:
	rm -rf build

help:
	@echo "Tessera — build a unikernel image for QEMU virt (RISC-V 64)"
	@echo
	@echo "  make [APP=name] [FRAGMENTS='configs/x.config ...'] [V=1] [target]"
	@echo
	@echo "Targets:"
	@echo "  all            build $(BUILD)/$(APP).elf (default; configures from the defconfig if needed)"
	@echo "  run            build and boot in QEMU, serial console on this terminal (Ctrl-A X quits)"
	@echo "  gdb            boot halted with a gdbstub and print the gdb-multiarch command line"
	@echo "  defconfig      configs/<app>_defconfig + FRAGMENTS -> build/<app>/.config"
	@echo "  menuconfig     edit the configuration (Kconfiglib menuconfig)"
	@echo "  olddefconfig   update .config to the current Kconfig files, new options at defaults"
	@echo "  savedefconfig  write the minimal config to build/<app>/defconfig"
	@echo "  boot-order     print the init steps in the order they run"
	@echo "  test           build every test configuration and run the pytest suite"
	@echo "  bench          measure image size, boot cost and wall time -> build/bench/results.json"
	@echo "  bench-ab       A=<dir> B=<dir>: two builds of tcpecho through SLIRP, alternating (PAIRS=6)"
	@echo "  deps           install the Debian packages the build and tests need"
	@echo "  clean          remove build/<app>;  distclean: remove build/"
	@echo
	@echo "Variables:"
	@echo "  APP=<name>          the application (default helloworld)"
	@echo "  FRAGMENTS=<files>   config fragments merged over the app's defconfig"
	@echo "  BUILD=<dir>         output folder (default build/<app>)"
	@echo "  V=1                 show full commands"
	@echo "  NO_DEPS=1           do not check/install Debian packages"
	@echo "  CROSS_COMPILE=<p>   toolchain prefix (default riscv64-linux-gnu-)"
	@echo "  PYTEST_ARGS=...     extra pytest arguments for make test (e.g. -k panic)"
	@echo "  PYTEST_JOBS=<n>     parallel test workers (default auto: one per core)"
	@echo "  GDB_PORT=<port>     gdbstub port for make gdb (default 1234)"
	@echo
	@echo "Apps: $(APPS)"
	@echo "Libraries: $(patsubst libs/%/lib.mk,%,$(wildcard libs/*/lib.mk))"
