#pragma once
// Fixed-size object pools (slab style). Objects are carved from slabs of
// buddy pages; a free object holds the free-list link in its first word,
// so allocate() and free() are O(1) pops and pushes. Every slab starts with
// a header naming its pool, which lets free() reject a pointer that does
// not belong to the pool. A freed object carries a marker word, so a double
// free is caught; with CONFIG_MM_POISON freed objects are also filled and
// checked, catching writes after free.
//
// SMP-safe. Each hart has a small cache of free objects in the pool, used
// with interrupts off and no atomics (the common path); it is refilled
// from, and flushed to, the pool's shared free list in batches under the
// pool's IRQ-safe spinlock (lock order: base/lock_order.hpp). Allocation is
// refused in interrupt context (VERIFY); free() is allowed there.
// Limits: slabs go back to the page allocator only when the pool is
// destroyed, not as they empty.
#include <arch/hart.hpp>
#include <arch/spinlock.hpp>
#include <base/allocator.hpp>
#include <base/list.hpp>
#include <base/verify.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <type_traits>

namespace tessera::mm_pool {

struct PoolStats {
    std::string_view name;
    std::size_t object_size;
    std::uint64_t slabs;
    std::uint64_t in_use;
    std::uint64_t free;       // on the shared list or in hart caches
    std::uint64_t high_water; // most objects outside the shared free list
                              // (in use or cached), sampled at refills
    std::uint64_t allocations;
    std::uint64_t frees;
};

class Pool {
public:
    // object_size >= 16 bytes (the free-list link and the free marker).
    // Objects are aligned to min(object_size rounded up to 16, 64).
    constexpr Pool(std::string_view name, std::size_t object_size)
        : m_name(name), m_object_size(object_size < 16 ? 16 : object_size),
          m_stride(stride_for(object_size < 16 ? 16 : object_size)), m_slab_bytes(slab_bytes_for(m_stride)) {}
    Pool(const Pool&) = delete;
    Pool& operator=(const Pool&) = delete;
    // Returns every slab to the page allocator and leaves the registry.
    // Destroying a pool with objects still allocated is a bug (panics).
    // constexpr keeps Pool a literal type, so pools can be constinit
    // globals; nothing is torn down during constant evaluation.
    constexpr ~Pool() {
        if (std::is_constant_evaluated()) return;
        destroy();
    }

    // Inline fast paths (below): a hit in this hart's cache costs no call.
    [[nodiscard]] base::Result<void*> allocate();
    void free(void* object);
    [[nodiscard]] PoolStats stats();
    [[nodiscard]] std::size_t object_size() const { return m_object_size; }
    // True if `object` carries the marker the pool writes into freed objects
    // (for callers that layer headers over pool objects, like kmalloc).
    [[nodiscard]] static bool looks_freed(const void* object);

    // base::Allocator face.
    base::Result<void*> allocate(std::size_t size, std::size_t align);
    void deallocate(void* p, std::size_t size);

    // Node in the registry of all pools (for /proc/meminfo), linked on the
    // pool's first allocation.
    base::ListNode registry_node;

private:
    // A free object: the free-list link, then the marker that tells a
    // double free (see kFreeMarker).
    struct FreeObject {
        FreeObject* next;
        std::uint64_t marker;
    };
    struct SlabHeader {
        std::uint64_t magic;
        Pool* pool;
        SlabHeader* next; // the pool's other slabs
    };
    static constexpr std::uint64_t kSlabMagic = 0x736c6162'706f6f6cull; // "slabpool"
    // Second word of every object on a free list or in a cache. An object
    // freed while it still carries the marker is a double free. (A live
    // object whose owner stores exactly this value there would be
    // misreported; the odds are negligible and the check is always on.)
    static constexpr std::uint64_t kFreeMarker = 0xf7eef7eef7eef7eeull;
    static constexpr std::size_t kSlabHeader = 64; // room for SlabHeader, keeps objects aligned
    static_assert(sizeof(SlabHeader) <= kSlabHeader);
    static constexpr std::size_t stride_for(std::size_t size) {
        std::size_t s = base::align_up(size, 16);
        return s >= 64 ? base::align_up(s, 64) : s;
    }
    // At least 8 objects per slab, in a power-of-two number of pages.
    static constexpr std::size_t slab_bytes_for(std::size_t stride) {
        std::size_t bytes = 4096;
        while (bytes < kSlabHeader + 8 * stride) bytes *= 2;
        return bytes;
    }
    base::Result<void> grow_locked();
    base::Result<void> refill(unsigned hart);
    base::Result<void*> allocate_slow();
    base::Result<void*> allocate_checked(); // CONFIG_MM_POISON
    void free_checked(void* object);        // CONFIG_MM_POISON
    void check_poison(const FreeObject* object) const;
    void flush(unsigned hart, unsigned keep);
    void destroy();

    static constexpr unsigned kCacheSize = 13; // objects per hart cache
    static constexpr unsigned kBatch = 6;      // moved per refill/flush
    // 128 bytes: one cache line pair per hart, indexed by a shift.
    struct alignas(128) HartCache {
        FreeObject* objects[kCacheSize] = {};
        std::uint64_t count = 0;
        std::uint64_t allocations = 0; // touched only by the owning hart
        std::uint64_t frees = 0;
    };
    static_assert(sizeof(HartCache) == 128);
    HartCache m_cache[arch::kMaxHarts];
    [[noreturn]] void bad_free(const void* object, const char* why);

    // Protects everything below. Lock order (base/lock_order.hpp): the
    // registry and mm-buddy zone locks nest inside it.
    arch::Spinlock m_lock;
    FreeObject* m_free = nullptr;
    void* m_slab_list = nullptr; // slabs chained through their headers
    std::string_view m_name;
    std::size_t m_object_size;
    std::size_t m_stride;
    std::size_t m_slab_bytes;
    std::uint64_t m_slabs = 0, m_capacity = 0, m_shared_free = 0, m_high_water = 0;
    bool m_registered = false; // in g_registry (pool.cpp); under m_lock
};
static_assert(base::Allocator<Pool>);

inline base::Result<void*> Pool::allocate() {
#if CONFIG_MM_POISON
    return allocate_checked();
#else
    VERIFY(!arch::in_interrupt()); // no allocation in interrupt context
    arch::IrqGuard irq;            // pins us to this hart's cache
    HartCache& cache = m_cache[arch::this_hart().index];
    if (cache.count == 0) [[unlikely]]
        return allocate_slow();
    FreeObject* object = cache.objects[--cache.count];
    ++cache.allocations;
    object->marker = 0;
    return static_cast<void*>(object);
#endif
}

inline void Pool::free(void* p) {
    if (!p) return;
    auto address = reinterpret_cast<std::uintptr_t>(p);
    // The slab header names the owner: this rejects other pools' objects,
    // pointers into an object and memory that is no slab at all. (A wild
    // pointer into unmapped memory faults right here, which also reports.)
    auto* slab = reinterpret_cast<const SlabHeader*>(address & ~(m_slab_bytes - 1));
    std::size_t offset = address - reinterpret_cast<std::uintptr_t>(slab);
    if (slab->magic != kSlabMagic || slab->pool != this) [[unlikely]]
        bad_free(p, "not an object of this pool");
    if (offset < kSlabHeader || (offset - kSlabHeader) % m_stride) [[unlikely]]
        bad_free(p, "not the start of an object");
    auto* object = static_cast<FreeObject*>(p);
    if (object->marker == kFreeMarker) [[unlikely]]
        bad_free(p, "double free");
#if CONFIG_MM_POISON
    free_checked(p);
#else
    object->marker = kFreeMarker;
    arch::IrqGuard irq;
    HartCache& cache = m_cache[arch::this_hart().index];
    if (cache.count == kCacheSize) [[unlikely]]
        flush(arch::this_hart().index, kCacheSize - kBatch);
    cache.objects[cache.count++] = object;
    ++cache.frees;
#endif
}

// Visits the statistics of every pool that has allocated at least once.
void for_each_pool(void (*visit)(const PoolStats&, void*), void* context);

} // namespace tessera::mm_pool
