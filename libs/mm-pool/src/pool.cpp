#include <arch/hart.hpp>
#include <cstring>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <mm-pool/pool.hpp>

namespace tessera::mm_pool {

namespace {

constexpr std::uint8_t kPoison = 0x6b;

// Registry of pools, for statistics. Lock order: inside a pool lock (a
// pool registers itself when it grows its first slab), base/lock_order.hpp.
constinit arch::Spinlock g_registry_lock;
constinit base::IntrusiveList<Pool, &Pool::registry_node> g_registry;

} // namespace

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
    }
    m_capacity += count;
    m_shared_free += count;
    ++m_slabs;
    if (!m_registered) { // the first slab: make the pool visible to statistics
        arch::SpinlockGuard guard(g_registry_lock);
        g_registry.push_back(*this);
        m_registered = true;
    }
    return {};
}

// Moves up to kBatch objects from the shared list into `hart`'s cache.
// Interrupts are off (the caller's IrqGuard), so the hart cannot change.
base::Result<void> Pool::refill(unsigned hart) {
    HartCache& cache = m_cache[hart];
    arch::SpinlockGuard guard(m_lock);
    if (!m_free) TRY(grow_locked());
    while (m_free && cache.count < kBatch) {
        cache.objects[cache.count++] = m_free;
        m_free = m_free->next;
        --m_shared_free;
    }
    std::uint64_t out = m_capacity - m_shared_free;
    if (out > m_high_water) m_high_water = out;
    return {};
}

// Returns objects from `hart`'s cache to the shared list until `keep` remain.
void Pool::flush(unsigned hart, unsigned keep) {
    HartCache& cache = m_cache[hart];
    arch::SpinlockGuard guard(m_lock);
    while (cache.count > keep) {
        FreeObject* object = cache.objects[--cache.count];
        object->next = m_free;
        m_free = object;
        ++m_shared_free;
    }
}

// The path through refill(), kept out of allocate() so the common case
// needs no saved registers.
[[gnu::noinline]] base::Result<void*> Pool::allocate_slow() {
    FreeObject* object;
    {
        arch::IrqGuard irq; // refill and take in one go: nobody can drain it between
        unsigned hart = arch::this_hart().index;
        TRY(refill(hart));
        HartCache& cache = m_cache[hart];
        object = cache.objects[--cache.count];
        ++cache.allocations;
    }
#if CONFIG_MM_POISON
    check_poison(object);
#endif
    object->marker = 0;
    return static_cast<void*>(object);
}

// The cache-hit path with the use-after-free check (CONFIG_MM_POISON).
base::Result<void*> Pool::allocate_checked() {
    VERIFY(!arch::in_interrupt()); // no allocation in interrupt context
    FreeObject* object;
    {
        arch::IrqGuard irq;
        HartCache& cache = m_cache[arch::this_hart().index];
        if (cache.count == 0) [[unlikely]]
            return allocate_slow();
        object = cache.objects[--cache.count];
        ++cache.allocations;
    }
    check_poison(object);
    object->marker = 0;
    return static_cast<void*>(object);
}

void Pool::check_poison(const FreeObject* object) const {
    auto* bytes = reinterpret_cast<const std::uint8_t*>(object);
    for (std::size_t i = sizeof(FreeObject); i < m_object_size; ++i) {
        if (bytes[i] != kPoison) {
            klog::error("mm-pool {}: object {} was written after it was freed (byte {} is {:#04x}, not {:#04x})",
                        m_name, static_cast<const void*>(object), i, bytes[i], kPoison);
            PANIC("mm-pool: use after free");
        }
    }
}

// free() after its checks, with poisoning (CONFIG_MM_POISON).
void Pool::free_checked(void* p) {
    auto* object = static_cast<FreeObject*>(p);
    memset(object, kPoison, m_object_size);
    object->marker = kFreeMarker;
    arch::IrqGuard irq;
    HartCache& cache = m_cache[arch::this_hart().index];
    if (cache.count == kCacheSize) flush(arch::this_hart().index, kCacheSize - kBatch);
    cache.objects[cache.count++] = object;
    ++cache.frees;
}

void Pool::bad_free(const void* object, const char* why) {
    klog::error("mm-pool {}: free({}): {}", m_name, object, why);
    PANIC("mm-pool: invalid free");
}

PoolStats Pool::stats() {
    std::uint64_t allocations = 0, frees = 0;
    for (const HartCache& cache : m_cache) { // racy snapshot of per-hart counters: statistics only
        allocations += cache.allocations;
        frees += cache.frees;
    }
    arch::SpinlockGuard guard(m_lock);
    std::uint64_t in_use = allocations - frees;
    return {m_name, m_object_size, m_slabs, in_use, m_capacity - in_use, m_high_water, allocations, frees};
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

void Pool::destroy() {
    std::uint64_t in_use = stats().in_use;
    for (unsigned h = 0; h < arch::kMaxHarts; ++h) flush(h, 0);
    arch::SpinlockGuard guard(m_lock);
    if (m_registered) {
        arch::SpinlockGuard registry(g_registry_lock);
        g_registry.remove(*this);
        m_registered = false;
    }
    if (in_use != 0) {
        klog::error("mm-pool {}: destroyed with {} objects still allocated", m_name, in_use);
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
    m_capacity = m_slabs = m_shared_free = 0;
    for (HartCache& cache : m_cache) cache.allocations = cache.frees = 0;
}


bool Pool::looks_freed(const void* object) { return static_cast<const FreeObject*>(object)->marker == kFreeMarker; }

} // namespace tessera::mm_pool
