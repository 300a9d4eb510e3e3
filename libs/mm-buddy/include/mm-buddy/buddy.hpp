#pragma once
// Physical page allocator: the buddy system over each RAM region the device
// tree lists, minus the firmware and kernel image (everything below the
// image's end), the device tree blob and reserved ranges.
//
// Blocks are 2^order pages (order 0..CONFIG_MM_BUDDY_MAX_ORDER), aligned to
// their size, which contiguous DMA buffers need. A per-page state byte
// makes free O(log n) and lets every free be checked: freeing a pointer
// that is not the start of an allocated block (a double free, a pointer
// into the middle, memory we never handed out) panics with the reason.
//
// SMP-safe: one IRQ-safe spinlock per region (lock order: base/lock_order.hpp).
// Never allocate in interrupt context (VERIFY).
#include <base/allocator.hpp>
#include <cstddef>
#include <cstdint>

namespace tessera::mm_buddy {

inline constexpr std::size_t kPageSize = 4096;
inline constexpr unsigned kMaxOrder = CONFIG_MM_BUDDY_MAX_ORDER;

// 2^order contiguous pages, aligned to 2^order pages. NoMemory when no
// block is free; InvalidArgument for order > kMaxOrder.
base::Result<void*> alloc_pages(unsigned order);
// At least `pages` contiguous pages (rounded up to a power of two).
base::Result<void*> alloc_contiguous(std::size_t pages);
void free_pages(void* block);

// Order of the smallest block holding `bytes`.
constexpr unsigned order_for(std::size_t bytes) {
    unsigned order = 0;
    while ((kPageSize << order) < bytes) ++order;
    return order;
}

struct Stats {
    std::uint64_t total_pages;  // managed by the allocator
    std::uint64_t free_pages;
    std::uint64_t free_blocks[kMaxOrder + 1];
    std::uint64_t allocations;
    std::uint64_t frees;
    std::uint64_t failures;
    std::uint64_t metadata_bytes; // the per-page state array
};
Stats stats();

// The base::Allocator face: whole blocks for `size` bytes.
struct PageAllocator {
    base::Result<void*> allocate(std::size_t size, std::size_t align);
    void deallocate(void* p, std::size_t size);
};
static_assert(base::Allocator<PageAllocator>);

} // namespace tessera::mm_buddy
