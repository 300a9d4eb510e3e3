// Allocator costs in guest instructions per operation, for make bench. Each
// figure is the mean over many repetitions of a warm allocate+free pair
// (or one bump allocation), loop overhead included.
#include <arch/csr.hpp>
#include <klog/klog.hpp>
#include <mm-arena/arena.hpp>
#include <mm-buddy/buddy.hpp>
#include <mm-pool/kmalloc.hpp>
#include <mm-pool/pool.hpp>
#include <plat/boot.hpp>

using namespace tessera;

namespace {

constexpr unsigned kRounds = 20000;
constinit mm_pool::Pool g_pool("mmbench-64", 64);

template <typename F>
std::uint64_t per_op(F&& op) {
    op(); // warm: slabs grown, code translated
    std::uint64_t start = arch::rdinstret();
    for (unsigned i = 0; i < kRounds; ++i) op();
    return (arch::rdinstret() - start) / kRounds;
}

} // namespace

int main() {
    auto steps = plat::boot::init_steps();
    auto costs = plat::boot::init_step_instructions();
    for (std::size_t i = 0; i < steps.size(); ++i) klog::print("mmbench: init {} {}\n", steps[i].name, costs[i]);

    klog::print("mmbench: pool_alloc_free {}\n", per_op([] {
        void* p = g_pool.allocate().value();
        asm volatile("" ::"r"(p) : "memory");
        g_pool.free(p);
    }));
    // One page held across the loop keeps its buddy free at order 0, so
    // every pair takes the order-0 list and frees without merging: the
    // figure is the allocator's steady state, not how deep the split of
    // whatever block the image's end left first in line happens to be
    // (which moves with the image size).
    void* pinned = mm_buddy::alloc_pages(0).value();
    klog::print("mmbench: buddy_order0_alloc_free {}\n", per_op([] {
        void* p = mm_buddy::alloc_pages(0).value();
        asm volatile("" ::"r"(p) : "memory");
        mm_buddy::free_pages(p);
    }));
    mm_buddy::free_pages(pinned);
    klog::print("mmbench: kmalloc64_alloc_free {}\n", per_op([] {
        void* p = mm_pool::kmalloc(64).value();
        asm volatile("" ::"r"(p) : "memory");
        mm_pool::kfree(p);
    }));
    mm_arena::Arena arena("mmbench");
    klog::print("mmbench: arena_alloc {}\n", per_op([&] {
        void* p = arena.allocate(48).value();
        asm volatile("" ::"r"(p) : "memory");
    }));
    std::uint64_t start = arch::rdinstret();
    arena.release();
    klog::print("mmbench: arena_release_{}_chunks {}\n", 0, arch::rdinstret() - start);
    klog::print("mmbench: done\n");
    return 0;
}
