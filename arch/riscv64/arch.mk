# arch/riscv64: entry, traps, SBI, CSR and per-hart helpers.
SRCS-y += src/entry.S src/trap_entry.S src/trap.cpp src/sbi.cpp src/panic.cpp src/hart.cpp \
          src/switch.S src/context.cpp src/clz.S
TESTS-y += tests/arch_test.cpp
USES += klog
