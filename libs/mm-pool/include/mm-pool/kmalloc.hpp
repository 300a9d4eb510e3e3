#pragma once
// The general kernel heap. Requests up to 2032 bytes come from size-class
// pools (32..2048 bytes including a 16-byte header); larger ones take whole
// buddy blocks. Every block carries a header, so kfree() needs no size and
// can tell a kmalloc pointer from anything else: freeing a foreign pointer
// or the same block twice panics with the reason. With CONFIG_MM_REDZONE a
// write past the requested size is caught at kfree().
// Results are 16-byte aligned; larger alignments: use mm_buddy directly.
// SMP-safe; allocation is refused in interrupt context (VERIFY).
// operator new/delete use this heap (new panics when memory runs out:
// kernel code that can fail should call kmalloc and handle the Result).
#include <base/allocator.hpp>
#include <cstddef>

namespace tessera::mm_pool {

[[nodiscard]] base::Result<void*> kmalloc(std::size_t size);
void kfree(void* p);
// The usable size of a block (at least what was asked for).
[[nodiscard]] std::size_t ksize(const void* p);

struct HeapAllocator {
    base::Result<void*> allocate(std::size_t size, std::size_t align);
    void deallocate(void* p, std::size_t size);
};
static_assert(base::Allocator<HeapAllocator>);

} // namespace tessera::mm_pool
