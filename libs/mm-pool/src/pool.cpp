#include <arch/hart.hpp>
#include <cstring>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <mm-pool/pool.hpp>

namespace tessera::mm_pool {

namespace {

constexpr std::uint64_t kSlabMagic = 0x736c6162'706f6f6cull; // "slabpool"
// Second word of every object on a free list. An object freed while it
// still carries the marker is a double free. (A live object whose owner
// stores exactly this value there would be misreported; the odds are
// negligible and the check is always on.)
constexpr std::uint64_t kFreeMarker = 0xf7eef7eef7eef7eeull;
constexpr std::uint8_t kPoison = 0x6b;

struct SlabHeader {
    std::uint64_t magic;
    Pool* pool;
    SlabHeader* next; // the pool's other slabs
};
static_assert(sizeof(SlabHeader) <= 64);

// Registry of pools, for statistics. Lock order: taken alone, never
// together with a pool lock (base/lock_order.hpp).
constinit arch::Spinlock g_registry_lock;
constinit base::IntrusiveList<Pool, &Pool::registry_node> g_registry;

} // namespace

struct Pool::FreeObject {
    FreeObject* next;
    std::uint64_t marker;
};

base::Result<void> Pool::grow_locked() {
    auto block = mm_buddy::alloc_pages(mm_buddy::order_for(m_slab_bytes));
    if (!block.ok()) return block.error();
    auto* slab = static_cast<std::uint8_t*>(block.value());
    *reinterpret_cast<SlabHeader*>(slab) = {kSlabMagic, this, static_cast<SlabHeader*>(m_slab_list)};
    m_slab_list = slab;
    // Objects sit at kSlabHeader + k * stride. Thread them onto the free
    // list from the top, so the lowest address comes out first.
    std::size_t count = (m_slab_bytes - kSlabHeader) / m_stride;
    for (std::size_t k = count; k-- > 0;) {
        auto* object = reinterpret_cast<FreeObject*>(slab + kSlabHeader + k * m_stride);
#if CONFIG_MM_POISON
        memset(object, kPoison, m_object_size);
#endif
        object->next = m_free;
        object->marker = kFreeMarker;
        m_free = object;
        ++m_free_count;
    }
    ++m_slabs;
    return {};
}

base::Result<void*> Pool::allocate() {
    VERIFY(!arch::in_interrupt()); // no allocation in interrupt context
    FreeObject* object;
    {
        arch::SpinlockGuard guard(m_lock);
        if (!m_free) TRY(grow_locked());
        object = m_free;
        m_free = object->next;
        --m_free_count;
        ++m_allocations;
        if (++m_in_use > m_high_water) m_high_water = m_in_use;
    }
    if (!m_registered.load(std::memory_order_acquire)) { // first use: make it visible to statistics
        arch::SpinlockGuard guard(g_registry_lock);
        if (!m_registered.load(std::memory_order_relaxed)) {
            g_registry.push_back(*this);
            m_registered.store(true, std::memory_order_release);
        }
    }
#if CONFIG_MM_POISON
    auto* bytes = reinterpret_cast<const std::uint8_t*>(object);
    for (std::size_t i = sizeof(FreeObject); i < m_object_size; ++i) {
        if (bytes[i] != kPoison) {
            klog::error("mm-pool {}: object {} was written after it was freed (byte {} is {:#04x}, not {:#04x})",
                        m_name, static_cast<void*>(object), i, bytes[i], kPoison);
            PANIC("mm-pool: use after free");
        }
    }
#endif
    object->marker = 0;
    return static_cast<void*>(object);
}

void Pool::destroy() {
    if (m_registered.load(std::memory_order_acquire)) {
        arch::SpinlockGuard guard(g_registry_lock);
        g_registry.remove(*this);
    }
    arch::SpinlockGuard guard(m_lock);
    if (m_in_use != 0) {
        klog::error("mm-pool {}: destroyed with {} objects still allocated", m_name, m_in_use);
        PANIC("mm-pool: pool destroyed while in use");
    }
    for (auto* slab = static_cast<SlabHeader*>(m_slab_list); slab;) {
        SlabHeader* next = slab->next;
        slab->magic = 0; // a stale pointer into it no longer looks like ours
        mm_buddy::free_pages(slab);
        slab = next;
    }
    m_slab_list = nullptr;
    m_free = nullptr;
}

bool Pool::looks_freed(const void* object) { return static_cast<const FreeObject*>(object)->marker == kFreeMarker; }

void Pool::bad_free(const void* object, const char* why) {
    klog::error("mm-pool {}: free({}): {}", m_name, object, why);
    PANIC("mm-pool: invalid free");
}

void Pool::free(void* p) {
    if (!p) return;
    auto address = reinterpret_cast<std::uintptr_t>(p);
    auto* slab = reinterpret_cast<const SlabHeader*>(address & ~(m_slab_bytes - 1));
    std::size_t offset = address - reinterpret_cast<std::uintptr_t>(slab);
    // Reading the slab header is safe: the page holding `p` is mapped RAM
    // if `p` came from anywhere sensible; a wild pointer faults right here,
    // which also ends in a report.
    if (slab->magic != kSlabMagic || slab->pool != this) bad_free(p, "not an object of this pool");
    if (offset < kSlabHeader || (offset - kSlabHeader) % m_stride) bad_free(p, "not the start of an object");
    auto* object = static_cast<FreeObject*>(p);
    if (object->marker == kFreeMarker) bad_free(p, "double free");
#if CONFIG_MM_POISON
    memset(object, kPoison, m_object_size);
#endif
    object->marker = kFreeMarker;
    arch::SpinlockGuard guard(m_lock);
    object->next = m_free;
    m_free = object;
    ++m_free_count;
    --m_in_use;
    ++m_frees;
}

PoolStats Pool::stats() {
    arch::SpinlockGuard guard(m_lock);
    return {m_name, m_object_size, m_slabs, m_in_use, m_free_count, m_high_water, m_allocations, m_frees};
}

base::Result<void*> Pool::allocate(std::size_t size, std::size_t align) {
    std::size_t natural = m_stride >= 64 ? 64 : m_stride;
    if (size > m_object_size || !base::is_power_of_two(align) || align > natural)
        return base::Error::InvalidArgument;
    return allocate();
}

void Pool::deallocate(void* p, std::size_t) { free(p); }

void for_each_pool(void (*visit)(const PoolStats&, void*), void* context) {
    // Snapshot under the registry lock, then visit without it, so that a
    // visitor may log or allocate.
    constexpr unsigned kMax = 64;
    Pool* pools[kMax];
    unsigned n = 0;
    {
        arch::SpinlockGuard guard(g_registry_lock);
        for (Pool& p : g_registry)
            if (n < kMax) pools[n++] = &p;
    }
    for (unsigned i = 0; i < n; ++i) visit(pools[i]->stats(), context);
}

} // namespace tessera::mm_pool
