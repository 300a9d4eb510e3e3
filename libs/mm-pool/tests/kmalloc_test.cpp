#include <cstring>
#include <ktest/ktest.hpp>
#include <mm-buddy/buddy.hpp>
#include <mm-pool/kmalloc.hpp>
#include <mm-pool/pool.hpp>
#include <new>

using namespace tessera;
using base::Error;

namespace {
ktest::Random g_random(0x9e3779b97f4a7c15ull);
std::uint64_t next_random() { return g_random.next(); }

std::uint64_t kmalloc_slabs() {
    std::uint64_t slabs = 0;
    mm_pool::for_each_pool([](const mm_pool::PoolStats& s, void* total) {
        if (s.name.substr(0, 8) == "kmalloc-") *static_cast<std::uint64_t*>(total) += s.slabs;
    }, &slabs);
    return slabs;
}

struct Tracked {
    static inline int live = 0;
    int value;
    explicit Tracked(int v) : value(v) { ++live; }
    ~Tracked() { --live; }
};
} // namespace

KTEST(kmalloc, every_small_size_is_aligned_and_usable) {
    for (std::size_t size = 1; size <= 2100; size += (size < 64 ? 1 : 37)) {
        auto r = mm_pool::kmalloc(size);
        ASSERT_OK(r);
        EXPECT_EQ(reinterpret_cast<std::uintptr_t>(r.value()) % 16, 0u);
        EXPECT_GE(mm_pool::ksize(r.value()), size);
        memset(r.value(), 0x3c, size);
        mm_pool::kfree(r.value());
    }
}

KTEST(kmalloc, random_mix_keeps_contents_and_returns_all_memory) {
    struct Block { std::uint8_t* p; std::size_t size; std::uint8_t tag; } blocks[64] = {};
    std::uint64_t slabs_before = kmalloc_slabs();
    auto before = mm_buddy::stats();
    for (unsigned step = 0; step < 4000; ++step) {
        Block& b = blocks[next_random() % 64];
        if (b.p) {
            for (std::size_t i = 0; i < b.size; i += 97) ASSERT_EQ(b.p[i], b.tag);
            mm_pool::kfree(b.p);
            b.p = nullptr;
        } else {
            // Mostly small, sometimes multi-page.
            b.size = next_random() % 8 == 0 ? 3000 + next_random() % 30000 : 1 + next_random() % 1500;
            auto r = mm_pool::kmalloc(b.size);
            ASSERT_OK(r);
            b.p = static_cast<std::uint8_t*>(r.value());
            b.tag = static_cast<std::uint8_t>(step);
            memset(b.p, b.tag, b.size);
        }
    }
    for (auto& b : blocks)
        if (b.p) mm_pool::kfree(b.p);
    // Every multi-page block went back to the page allocator: the only page
    // allocations still outstanding are the slabs the kmalloc pools grew.
    auto after = mm_buddy::stats();
    std::uint64_t outstanding = (after.allocations - before.allocations) - (after.frees - before.frees);
    EXPECT_EQ(outstanding, kmalloc_slabs() - slabs_before);
}

KTEST(kmalloc, bad_sizes) {
    EXPECT_ERROR(mm_pool::kmalloc(std::size_t(1) << 40), Error::InvalidArgument);
    auto zero = mm_pool::kmalloc(0); // a valid, unique pointer
    ASSERT_OK(zero);
    mm_pool::kfree(zero.value());
    mm_pool::kfree(nullptr); // no-op
}

KTEST(kmalloc, operator_new_and_delete) {
    Tracked::live = 0;
    auto* t = new Tracked(5);
    EXPECT_EQ(t->value, 5);
    EXPECT_EQ(Tracked::live, 1);
    delete t;
    EXPECT_EQ(Tracked::live, 0);
    auto* many = new Tracked*[10];
    many[9] = nullptr;
    delete[] many;
    void* huge = ::operator new(std::size_t(1) << 40, std::nothrow);
    EXPECT_EQ(huge, nullptr);
}

KTEST(kmalloc, heap_allocator_interface) {
    mm_pool::HeapAllocator heap;
    auto r = heap.allocate(100, 16);
    ASSERT_OK(r);
    heap.deallocate(r.value(), 100);
    EXPECT_ERROR(heap.allocate(100, 32), Error::InvalidArgument);
}
