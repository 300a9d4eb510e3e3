#include <cstring>
#include <ktest/ktest.hpp>
#include <mm-arena/arena.hpp>
#include <mm-buddy/buddy.hpp>

using namespace tessera;
using base::Error;

KTEST(mm_arena, bump_allocation_is_aligned_and_disjoint) {
    mm_arena::Arena arena("ktest");
    std::uintptr_t previous_end = 0;
    for (std::size_t i = 1; i < 300; ++i) {
        std::size_t align = std::size_t(1) << (i % 7); // 1..64
        auto r = arena.allocate(i, align);
        ASSERT_OK(r);
        auto a = reinterpret_cast<std::uintptr_t>(r.value());
        EXPECT_EQ(a % align, 0u);
        if (arena.chunks() == 1) EXPECT_GE(a, previous_end); // bump order within a chunk
        previous_end = a + i;
        memset(r.value(), static_cast<int>(i), i);
    }
    EXPECT_EQ(arena.bytes_used(), 299u * 300 / 2);
    EXPECT_GT(arena.chunks(), 1u);
}

KTEST(mm_arena, release_returns_every_page) {
    auto before = mm_buddy::stats();
    {
        mm_arena::Arena arena("ktest");
        for (int i = 0; i < 100; ++i) ASSERT_OK(arena.allocate(1000));
        auto big = arena.allocate(100000); // bigger than a chunk: a chunk of its own
        ASSERT_OK(big);
        memset(big.value(), 0, 100000);
        EXPECT_GE(arena.high_water(), 200000u);
        arena.release();
        EXPECT_EQ(arena.chunks(), 0u);
        EXPECT_EQ(mm_buddy::stats().free_pages, before.free_pages);
        ASSERT_OK(arena.allocate(8)); // reusable after release; freed by the destructor
    }
    EXPECT_EQ(mm_buddy::stats().free_pages, before.free_pages);
    EXPECT_GE(mm_arena::stats().largest_arena, 200000u);
}

KTEST(mm_arena, bad_requests) {
    mm_arena::Arena arena("ktest");
    EXPECT_ERROR(arena.allocate(8, 3), Error::InvalidArgument);
    EXPECT_ERROR(arena.allocate(8, 8192), Error::InvalidArgument);
    EXPECT_ERROR(arena.allocate(std::size_t(1) << 40), Error::InvalidArgument);
    EXPECT_EQ(arena.chunks(), 0u);
}
