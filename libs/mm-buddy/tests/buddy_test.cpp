#include <ktest/ktest.hpp>
#include <cstring>
#include <mm-buddy/buddy.hpp>
#include <plat/machine.hpp>

extern "C" char __image_end[];

using namespace tessera;
using base::Error;
using mm_buddy::kPageSize;

namespace {
ktest::Random g_random(0x2545f4914f6cdd1dull);
std::uint64_t next_random() { return g_random.next(); }
} // namespace

KTEST(mm_buddy, every_order_is_aligned_and_returns_to_the_pool) {
    auto before = mm_buddy::stats();
    for (unsigned order = 0; order <= mm_buddy::kMaxOrder; ++order) {
        auto block = mm_buddy::alloc_pages(order);
        ASSERT_OK(block);
        auto a = reinterpret_cast<std::uintptr_t>(block.value());
        EXPECT_EQ(a % (kPageSize << order), 0u);
        // The whole block is usable memory.
        memset(block.value(), 0x5a, kPageSize << order);
        mm_buddy::free_pages(block.value());
    }
    auto after = mm_buddy::stats();
    EXPECT_EQ(after.free_pages, before.free_pages);
    for (unsigned k = 0; k <= mm_buddy::kMaxOrder; ++k) EXPECT_EQ(after.free_blocks[k], before.free_blocks[k]);
}

KTEST(mm_buddy, splitting_and_coalescing_restore_the_exact_layout) {
    auto before = mm_buddy::stats();
    void* pages[64];
    for (auto& p : pages) {
        auto r = mm_buddy::alloc_pages(0);
        ASSERT_OK(r);
        p = r.value();
    }
    EXPECT_EQ(mm_buddy::stats().free_pages, before.free_pages - 64);
    // Free in an order that needs merges at every level: odd pages first.
    for (int i = 1; i < 64; i += 2) mm_buddy::free_pages(pages[i]);
    for (int i = 0; i < 64; i += 2) mm_buddy::free_pages(pages[i]);
    auto after = mm_buddy::stats();
    EXPECT_EQ(after.free_pages, before.free_pages);
    for (unsigned k = 0; k <= mm_buddy::kMaxOrder; ++k) EXPECT_EQ(after.free_blocks[k], before.free_blocks[k]);
}

KTEST(mm_buddy, random_patterns_never_overlap) {
    // Random alloc/free of mixed orders; each block is filled with its own
    // tag and checked before it is freed, so overlap would show.
    struct Slot {
        std::uint8_t* p;
        unsigned order;
        std::uint8_t tag;
    } slots[48] = {};
    auto before = mm_buddy::stats();
    for (unsigned step = 0; step < 3000; ++step) {
        Slot& s = slots[next_random() % 48];
        if (s.p) {
            for (std::size_t i = 0; i < (kPageSize << s.order); i += 512) ASSERT_EQ(s.p[i], s.tag);
            mm_buddy::free_pages(s.p);
            s.p = nullptr;
        } else {
            s.order = static_cast<unsigned>(next_random() % 5);
            auto r = mm_buddy::alloc_pages(s.order);
            ASSERT_OK(r);
            s.p = static_cast<std::uint8_t*>(r.value());
            s.tag = static_cast<std::uint8_t>(step);
            for (std::size_t i = 0; i < (kPageSize << s.order); i += 512) s.p[i] = s.tag;
        }
    }
    for (auto& s : slots)
        if (s.p) mm_buddy::free_pages(s.p);
    EXPECT_EQ(mm_buddy::stats().free_pages, before.free_pages);
}

KTEST(mm_buddy, exhaustion_is_an_error_and_recovers) {
    auto before = mm_buddy::stats();
    // Take every largest block, then every smaller one: then nothing is left.
    static void* taken[4096];
    unsigned n = 0;
    for (int order = static_cast<int>(mm_buddy::kMaxOrder); order >= 0; --order) {
        for (;;) {
            auto r = mm_buddy::alloc_pages(static_cast<unsigned>(order));
            if (!r.ok()) {
                EXPECT_EQ(r.error(), Error::NoMemory);
                break;
            }
            ASSERT_LT(n, 4096u);
            taken[n++] = r.value();
        }
    }
    EXPECT_EQ(mm_buddy::stats().free_pages, 0u);
    EXPECT_ERROR(mm_buddy::alloc_pages(0), Error::NoMemory);
    EXPECT_GT(mm_buddy::stats().failures, before.failures);
    while (n) mm_buddy::free_pages(taken[--n]);
    EXPECT_EQ(mm_buddy::stats().free_pages, before.free_pages);
}

KTEST(mm_buddy, bad_requests) {
    EXPECT_ERROR(mm_buddy::alloc_pages(mm_buddy::kMaxOrder + 1), Error::InvalidArgument);
    EXPECT_ERROR(mm_buddy::alloc_contiguous(0), Error::InvalidArgument);
    EXPECT_ERROR(mm_buddy::alloc_contiguous((std::size_t(1) << mm_buddy::kMaxOrder) + 1), Error::InvalidArgument);
    auto three = mm_buddy::alloc_contiguous(3); // rounds up to 4 pages
    ASSERT_OK(three);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(three.value()) % (4 * kPageSize), 0u);
    mm_buddy::free_pages(three.value());
}

KTEST(mm_buddy, never_hands_out_the_image_dtb_or_reserved_memory) {
    const auto& m = plat::machine();
    for (int i = 0; i < 200; ++i) {
        auto r = mm_buddy::alloc_pages(0);
        ASSERT_OK(r);
        auto a = reinterpret_cast<std::uintptr_t>(r.value());
        EXPECT_GE(a, reinterpret_cast<std::uintptr_t>(__image_end));
        auto dtb = reinterpret_cast<std::uintptr_t>(m.dtb);
        EXPECT_TRUE(a + kPageSize <= dtb || a >= dtb + m.dtb_size);
        for (unsigned k = 0; k < m.reserved_count; ++k)
            EXPECT_TRUE(a + kPageSize <= m.reserved[k].base || a >= m.reserved[k].base + m.reserved[k].size);
        mm_buddy::free_pages(r.value());
    }
}

KTEST(mm_buddy, allocator_interface) {
    mm_buddy::PageAllocator pages;
    auto r = pages.allocate(10000, 64); // three pages -> an order-2 block
    ASSERT_OK(r);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.value()) % (4 * kPageSize), 0u);
    pages.deallocate(r.value(), 10000);
    EXPECT_ERROR(pages.allocate(16, 3), Error::InvalidArgument);
}
