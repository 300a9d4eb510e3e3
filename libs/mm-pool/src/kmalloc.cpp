#include <arch/hart.hpp>
#include <cstring>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <mm-pool/kmalloc.hpp>
#include <mm-pool/pool.hpp>
#include <new>

namespace tessera::mm_pool {

namespace {

using base::Error;
using base::Result;

// Precedes every block; keeps the payload 16-byte aligned.
struct Header {
    std::uint32_t magic;
    std::uint16_t size_class; // index into g_classes, or kPages
    std::uint16_t order;      // for kPages blocks
    std::uint64_t requested;  // bytes asked for (red zone starts there)
};
static_assert(sizeof(Header) == 16);

constexpr std::uint32_t kLive = 0x6b6d6c63;  // "kmlc"
constexpr std::uint32_t kFreed = 0x6b667265; // "kfre"
constexpr std::uint16_t kPages = 0xffff;
constexpr std::size_t kAlign = 16; // payload alignment (the header's size)
constexpr std::uint8_t kRedZone = 0xcc;

constinit Pool g_classes[] = {
    {"kmalloc-32", 32},   {"kmalloc-64", 64},     {"kmalloc-128", 128}, {"kmalloc-256", 256},
    {"kmalloc-512", 512}, {"kmalloc-1024", 1024}, {"kmalloc-2048", 2048},
};
constexpr std::size_t kClasses = sizeof(g_classes) / sizeof(g_classes[0]);

std::size_t capacity(const Header* h) {
    if (h->size_class == kPages) return (mm_buddy::kPageSize << h->order) - sizeof(Header);
    return g_classes[h->size_class].object_size() - sizeof(Header);
}

[[noreturn]] void bad_kfree(const void* p, const char* why) {
    klog::error("kfree({}): {}", p, why);
    PANIC("kmalloc: invalid kfree");
}

} // namespace

Result<void*> kmalloc(std::size_t size) {
    VERIFY(!arch::in_interrupt()); // no allocation in interrupt context
    if (size == 0) size = 1;
    if (size > (mm_buddy::kPageSize << mm_buddy::kMaxOrder) - sizeof(Header)) return Error::InvalidArgument;
    std::size_t total = size + sizeof(Header);
    Header* h = nullptr;
    for (std::size_t c = 0; c < kClasses; ++c) {
        if (g_classes[c].object_size() < total) continue;
        h = static_cast<Header*>(TRY(g_classes[c].allocate()));
        h->size_class = static_cast<std::uint16_t>(c);
        h->order = 0;
        break;
    }
    if (!h) {
        unsigned order = mm_buddy::order_for(total);
        h = static_cast<Header*>(TRY(mm_buddy::alloc_pages(order)));
        h->size_class = kPages;
        h->order = static_cast<std::uint16_t>(order);
    }
    h->magic = kLive;
    h->requested = size;
#if CONFIG_MM_REDZONE
    memset(reinterpret_cast<std::uint8_t*>(h + 1) + size, kRedZone, capacity(h) - size);
#endif
    return static_cast<void*>(h + 1);
}

void kfree(void* p) {
    if (!p) return;
    if (reinterpret_cast<std::uintptr_t>(p) % kAlign) bad_kfree(p, "not a pointer kmalloc returned");
    Header* h = static_cast<Header*>(p) - 1;
    // A block back in its pool has had its header overwritten by the pool's
    // free-list link and marker.
    if (h->magic == kFreed || (h->magic != kLive && Pool::looks_freed(h))) bad_kfree(p, "double free");
    if (h->magic != kLive || (h->size_class != kPages && h->size_class >= kClasses))
        bad_kfree(p, "not a pointer kmalloc returned");
#if CONFIG_MM_REDZONE
    auto* tail = static_cast<const std::uint8_t*>(p);
    for (std::size_t i = h->requested; i < capacity(h); ++i) {
        if (tail[i] != kRedZone) {
            klog::error("kfree({}): heap buffer overflow: byte {} written past the {} bytes requested", p,
                        i - h->requested, h->requested);
            PANIC("kmalloc: heap buffer overflow");
        }
    }
#endif
    h->magic = kFreed;
    if (h->size_class == kPages)
        mm_buddy::free_pages(h);
    else
        g_classes[h->size_class].free(h);
}

std::size_t ksize(const void* p) {
    const Header* h = static_cast<const Header*>(p) - 1;
    VERIFY(h->magic == kLive);
    return capacity(h);
}

Result<void*> HeapAllocator::allocate(std::size_t size, std::size_t align) {
    if (!base::is_power_of_two(align) || align > kAlign) return Error::InvalidArgument;
    return kmalloc(size);
}

void HeapAllocator::deallocate(void* p, std::size_t) { kfree(p); }

} // namespace tessera::mm_pool

// The C++ allocation functions. Without exceptions, a plain `new` that
// cannot be satisfied has no way to fail but to stop: kernel code that can
// run out of memory uses kmalloc (or the nothrow form) and handles it.
using tessera::mm_pool::kfree;
using tessera::mm_pool::kmalloc;

namespace {
void* new_or_panic(std::size_t size) {
    auto r = kmalloc(size);
    if (!r.ok()) PANIC("operator new: out of memory");
    return r.value();
}
} // namespace

void* operator new(std::size_t size) { return new_or_panic(size); }
void* operator new[](std::size_t size) { return new_or_panic(size); }
void* operator new(std::size_t size, const std::nothrow_t&) noexcept { return kmalloc(size).value_or(nullptr); }
void* operator new[](std::size_t size, const std::nothrow_t&) noexcept { return kmalloc(size).value_or(nullptr); }
void operator delete(void* p) noexcept { kfree(p); }
void operator delete[](void* p) noexcept { kfree(p); }
void operator delete(void* p, std::size_t) noexcept { kfree(p); }
void operator delete[](void* p, std::size_t) noexcept { kfree(p); }
