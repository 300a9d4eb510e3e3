#include <arch/csr.hpp>
#include <arch/hart.hpp>
#include <arch/sv39.hpp>
#include <ktest/ktest.hpp>
#include <mm-buddy/buddy.hpp>
#include <mmu/mmu.hpp>
#include <plat/machine.hpp>

extern "C" char __text_start[], __rodata_start[], __data_start[], __boot_stack_guard[], __boot_stack_bottom[];

using namespace tessera;
using mmu::Access;

namespace {
std::uintptr_t a(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
int g_data = 1;

// Visits every leaf of the live table: (va, pte).
template <typename F>
void for_each_leaf(F&& f) {
    using namespace arch::sv39;
    auto* root = reinterpret_cast<std::uint64_t*>((arch::csr_read<arch::Csr::satp>() & ((1ull << 44) - 1)) << 12);
    for (unsigned i = 0; i < kEntries; ++i) {
        std::uint64_t e2 = root[i];
        if (!(e2 & V)) continue;
        std::uint64_t va2 = std::uint64_t(i) << 30;
        if (is_leaf(e2)) { f(va2, e2); continue; }
        auto* t1 = reinterpret_cast<std::uint64_t*>(pte_address(e2));
        for (unsigned j = 0; j < kEntries; ++j) {
            std::uint64_t e1 = t1[j];
            if (!(e1 & V)) continue;
            std::uint64_t va1 = va2 | (std::uint64_t(j) << 21);
            if (is_leaf(e1)) { f(va1, e1); continue; }
            auto* t0 = reinterpret_cast<std::uint64_t*>(pte_address(e1));
            for (unsigned k = 0; k < kEntries; ++k)
                if (t0[k] & V) f(va1 | (std::uint64_t(k) << 12), t0[k]);
        }
    }
}
} // namespace

KTEST(mmu, translation_is_on_with_sv39) {
    EXPECT_EQ(arch::csr_read<arch::Csr::satp>() >> 60, 8u);
    EXPECT_TRUE(mmu::stats().enabled);
}

KTEST(mmu, kernel_map_has_the_right_permissions) {
    EXPECT_EQ(mmu::access_of(a(__text_start)), Access::ReadExecute);
    EXPECT_EQ(mmu::access_of(a(__rodata_start)), Access::Read);
    EXPECT_EQ(mmu::access_of(a(&g_data)), Access::ReadWrite);
    EXPECT_EQ(mmu::access_of(a(__boot_stack_bottom)), Access::ReadWrite);
    EXPECT_EQ(mmu::access_of(a(__boot_stack_guard)), Access::None);
    EXPECT_EQ(mmu::access_of(0), Access::None);
    EXPECT_EQ(mmu::access_of(plat::machine().memory[0].base), Access::None); // firmware
    EXPECT_EQ(mmu::access_of(plat::machine().uart_base), Access::ReadWrite);
    EXPECT_EQ(mmu::access_of(plat::machine().plic_base), Access::ReadWrite);
    EXPECT_EQ(mmu::access_of(0x20000000), Access::None); // flash: not listed as a device we use
}

KTEST(mmu, no_mapping_is_writable_and_executable) {
    unsigned leaves = 0, bad = 0, executable_pages = 0;
    for_each_leaf([&](std::uint64_t va, std::uint64_t pte) {
        ++leaves;
        if ((pte & arch::sv39::W) && (pte & arch::sv39::X)) ++bad;
        if (pte & arch::sv39::X) {
            ++executable_pages;
            EXPECT_GE(va, a(__text_start));
            EXPECT_LT(va, a(__rodata_start));
        }
    });
    EXPECT_GT(leaves, 10u);
    EXPECT_EQ(bad, 0u);
    EXPECT_GT(executable_pages, 0u);
}

KTEST(mmu, unmap_splits_a_large_page_and_map_restores_it) {
    auto before = mmu::stats();
    // An order-9 block is one 2 MiB-aligned region of ordinary RAM.
    auto block = mm_buddy::alloc_pages(9);
    ASSERT_OK(block);
    std::uintptr_t page = a(block.value()) + 5 * 4096;
    ASSERT_EQ(mmu::access_of(page), Access::ReadWrite);
    ASSERT_OK(mmu::unmap(page, 4096));
    EXPECT_EQ(mmu::access_of(page), Access::None);
    EXPECT_EQ(mmu::access_of(page + 4096), Access::ReadWrite); // neighbours keep their mapping
    EXPECT_EQ(mmu::access_of(page - 4096), Access::ReadWrite);
    EXPECT_GE(mmu::stats().splits, before.splits);
    ASSERT_OK(mmu::map(page, page, 4096, Access::ReadWrite));
    EXPECT_EQ(mmu::access_of(page), Access::ReadWrite);
    *reinterpret_cast<volatile int*>(page) = 7; // really writable again
    mm_buddy::free_pages(block.value());
}

KTEST(mmu, bad_requests) {
    EXPECT_ERROR(mmu::map(0x1001, 0x1001, 4096, Access::ReadWrite), base::Error::InvalidArgument);
    EXPECT_ERROR(mmu::map(0x1000, 0x1000, 4096, Access::None), base::Error::InvalidArgument);
    EXPECT_ERROR(mmu::unmap(std::uintptr_t(1) << 40, 4096), base::Error::OutOfRange);
}

KTEST(mmu, stacks_come_with_a_guard_page) {
    auto before = mm_buddy::stats().free_pages;
    auto tables_before = mmu::stats().table_pages;
    auto stack = mmu::alloc_stack(16384);
    ASSERT_OK(stack);
    EXPECT_EQ(stack.value().bottom, stack.value().guard + 4096);
    EXPECT_GE(stack.value().top - stack.value().bottom, 16384u);
    EXPECT_EQ(mmu::access_of(stack.value().guard), Access::None);
    EXPECT_EQ(mmu::access_of(stack.value().bottom), Access::ReadWrite);
    EXPECT_EQ(mmu::access_of(stack.value().top - 8), Access::ReadWrite);
    EXPECT_EQ(std::string_view(mmu::describe(stack.value().guard)), std::string_view("unmapped memory (a guard page, or no mapping)"));
    mmu::free_stack(stack.value());
    // Everything came back except page-table pages made by splitting a
    // 2 MiB mapping for the guard (tables are kept, not merged back).
    EXPECT_EQ(mm_buddy::stats().free_pages + (mmu::stats().table_pages - tables_before), before);
}

KTEST(mmu, fault_descriptions) {
    EXPECT_EQ(std::string_view(mmu::describe(a(__text_start) + 8)), std::string_view("kernel text (read-only)"));
    EXPECT_EQ(std::string_view(mmu::describe(a(__boot_stack_guard) + 100)),
              std::string_view("the guard page below the boot stack"));
    EXPECT_EQ(mmu::describe(a(&g_data)), nullptr);
}

KTEST(mmu, satp_names_the_live_table) {
    // What a secondary hart loads must be what the boot hart runs on.
    EXPECT_EQ(mmu::satp(), arch::csr_read<arch::Csr::satp>());
}

KTEST(mmu, shootdowns_only_when_other_harts_run) {
    std::uint64_t self = std::uint64_t(1) << arch::this_hart().hart_id;
    bool alone = arch::running_hart_mask() == self;
    auto before = mmu::stats().shootdowns;
    auto stack = mmu::alloc_stack(4096); // unmaps its guard page
    ASSERT_OK(stack);
    mmu::free_stack(stack.value());      // maps it again
    EXPECT_EQ(mmu::stats().shootdowns - before, alone ? 0u : 2u);
}
