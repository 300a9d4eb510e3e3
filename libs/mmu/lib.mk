# libs/mmu: kernel page tables.
SRCS-y += src/mmu.cpp
TESTS-y += tests/mmu_test.cpp
USES += mm-buddy
INIT += mmu.enable
INIT-AFTER-mmu.enable := mm_buddy.memory plat.irq
