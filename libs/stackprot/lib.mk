# libs/stackprot: stack canaries for every object of the image.
#
# The guard is the global __stack_chk_guard, said explicitly: a toolchain
# defaulting to a tp-relative guard would read the per-hart data (tp points
# at arch::Hart here).
KERNEL_CXXFLAGS-$(CONFIG_STACKPROT_STRONG) += -fstack-protector-strong -mstack-protector-guard=global
KERNEL_CXXFLAGS-$(CONFIG_STACKPROT_ALL) += -fstack-protector-all -mstack-protector-guard=global

SRCS-y += src/canary.cpp src/fail.cpp
TESTS-y += tests/stackprot_test.cpp
USES += fdt

# The seeding code changes the canary, so it must not run under a canary
# itself; __stack_chk_fail runs when the stack is already known bad.
CXXFLAGS-$(LIBDIR)/src/canary.cpp := -fno-stack-protector
CXXFLAGS-$(LIBDIR)/src/fail.cpp := -fno-stack-protector

# Logs where the canary came from (the seeding itself runs before the init
# table: see src/canary.cpp).
INIT += stackprot.report
