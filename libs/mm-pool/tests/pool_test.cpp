#include <cstring>
#include <ktest/ktest.hpp>
#include <mm-buddy/buddy.hpp>
#include <mm-pool/pool.hpp>

using namespace tessera;
using base::Error;

namespace {
constinit mm_pool::Pool g_small("ktest-24", 24);
constinit mm_pool::Pool g_big("ktest-1000", 1000);
} // namespace

KTEST(mm_pool, objects_are_distinct_aligned_and_reused) {
    void* objects[200];
    for (auto& o : objects) {
        auto r = g_small.allocate();
        ASSERT_OK(r);
        o = r.value();
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(o) % 16, 0u);
        memset(o, 0xa5, 24);
    }
    for (int i = 0; i < 200; ++i)
        for (int k = i + 1; k < 200; ++k)
            ASSERT_TRUE(static_cast<char*>(objects[i]) + 24 <= objects[k] || static_cast<char*>(objects[k]) + 24 <= objects[i]);
    auto s = g_small.stats();
    EXPECT_EQ(s.in_use, 200u);
    EXPECT_GE(s.slabs, 2u); // 200 objects do not fit one 4 KiB slab
    void* last = objects[199];
    g_small.free(last);
    EXPECT_EQ(g_small.allocate().value(), last); // LIFO: the hot object comes back
    for (auto* o : objects) g_small.free(o);
    s = g_small.stats();
    EXPECT_EQ(s.in_use, 0u);
    // High water counts objects off the shared list: in use or in a cache.
    EXPECT_GE(s.high_water, 200u);
    EXPECT_LE(s.high_water, 200u + 13);
    EXPECT_EQ(s.allocations, s.frees);
}

KTEST(mm_pool, large_objects_get_multi_page_slabs) {
    auto a = g_big.allocate();
    ASSERT_OK(a);
    EXPECT_EQ(reinterpret_cast<std::uintptr_t>(a.value()) % 64, 0u);
    memset(a.value(), 1, 1000);
    g_big.free(a.value());
    EXPECT_GE(g_big.stats().free, 8u); // at least 8 objects per slab
}

KTEST(mm_pool, allocator_interface_checks_the_request) {
    EXPECT_ERROR(g_small.allocate(25, 8), Error::InvalidArgument); // bigger than the objects
    EXPECT_ERROR(g_small.allocate(16, 64), Error::InvalidArgument); // stronger alignment than offered
    auto r = g_small.allocate(24, 16);
    ASSERT_OK(r);
    g_small.deallocate(r.value(), 24);
}

KTEST(mm_pool, registry_lists_used_pools) {
    (void)g_small.stats();
    struct Seen { bool small = false; } seen;
    mm_pool::for_each_pool([](const mm_pool::PoolStats& s, void* ctx) {
        if (s.name == "ktest-24") static_cast<Seen*>(ctx)->small = true;
    }, &seen);
    EXPECT_TRUE(seen.small);
}

KTEST(mm_pool, exhaustion_is_an_error) {
    // Drain the page allocator, then a pool that needs a new slab fails.
    static void* pages[4096];
    unsigned n = 0;
    for (int order = static_cast<int>(mm_buddy::kMaxOrder); order >= 0; --order)
        while (n < 4096) {
            auto r = mm_buddy::alloc_pages(static_cast<unsigned>(order));
            if (!r.ok()) break;
            pages[n++] = r.value();
        }
    mm_pool::Pool fresh("ktest-fresh", 64);
    EXPECT_ERROR(fresh.allocate(), Error::NoMemory);
    while (n) mm_buddy::free_pages(pages[--n]);
    auto ok = fresh.allocate();
    ASSERT_OK(ok);
    fresh.free(ok.value());
}

KTEST(mm_pool, destroyed_pool_returns_its_slabs_and_leaves_the_registry) {
    auto before = mm_buddy::stats();
    {
        mm_pool::Pool local("ktest-local", 128);
        void* objects[100];
        for (auto& o : objects) o = local.allocate().value();
        for (auto* o : objects) local.free(o);
    }
    EXPECT_EQ(mm_buddy::stats().free_pages, before.free_pages);
    bool listed = false;
    mm_pool::for_each_pool([](const mm_pool::PoolStats& s, void* ctx) {
        if (s.name == "ktest-local") *static_cast<bool*>(ctx) = true;
    }, &listed);
    EXPECT_FALSE(listed);
}
