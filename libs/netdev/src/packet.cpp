// The packet pool: CONFIG_NETDEV_PACKETS buffers in .bss, a LIFO free list
// (recently used buffers are warm in the cache) under one IRQ-safe
// spinlock. Allocation and free are a few instructions under the lock, so
// interrupt handlers may do both.
#include <arch/spinlock.hpp>
#include <base/verify.hpp>
#include <atomic>
#include <netdev/packet.hpp>
#include "transmit_ready.hpp"

namespace tessera::netdev {

class PacketPool {
public:
    static constexpr std::uint16_t kInPool = 0x9f1e;

    Packet* take() {
        arch::SpinlockGuard guard(m_lock);
        if (!m_initialized) initialize_locked();
        Packet* p = m_free;
        if (!p) {
            ++m_failures;
            m_starved.store(1, std::memory_order_relaxed);
            return nullptr;
        }
        m_free = p->next;
        --m_count;
        if (m_count < m_min_free) m_min_free = m_count;
        ++m_allocations;
        VERIFY(p->m_pool_marker == kInPool);
        p->m_pool_marker = 0;
        p->next = nullptr;
        return p;
    }

    void give(Packet* p) {
        auto address = reinterpret_cast<std::uintptr_t>(p);
        auto first = reinterpret_cast<std::uintptr_t>(&m_packets[0]);
        // A pointer that is not one of our buffers, or one already free, is
        // a bug in the owner's bookkeeping: stop here, not at the next user.
        VERIFY(address >= first && address < first + sizeof(m_packets) && (address - first) % sizeof(Packet) == 0);
        {
            arch::SpinlockGuard guard(m_lock);
            VERIFY(p->m_pool_marker != kInPool); // double free
            p->m_pool_marker = kInPool;
            p->next = m_free;
            m_free = p;
            ++m_count;
        }
        // An allocation failed since the last free: whoever held data back
        // for want of a buffer (tcp) may go on. One relaxed load otherwise.
        if (m_starved.load(std::memory_order_relaxed) && m_starved.exchange(0, std::memory_order_acq_rel))
            detail::schedule_transmit_ready();
    }

    PoolStats stats() {
        arch::SpinlockGuard guard(m_lock);
        if (!m_initialized) initialize_locked();
        return {kCount, m_count, m_min_free, m_allocations, m_failures};
    }

    void reset_min_free() {
        arch::SpinlockGuard guard(m_lock);
        m_min_free = m_count;
    }

private:
    static constexpr std::uint32_t kCount = CONFIG_NETDEV_PACKETS;
    // Lazily, so the pool needs no init step and costs nothing at boot.
    void initialize_locked() {
        for (std::uint32_t i = kCount; i-- > 0;) {
            m_packets[i].m_pool_marker = kInPool;
            m_packets[i].next = m_free;
            m_free = &m_packets[i];
        }
        m_count = m_min_free = kCount;
        m_initialized = true;
    }

    // Protects the free list and counters. Lock order: a leaf below the
    // netdev rx queue lock (base/lock_order.hpp); only klog under it.
    arch::Spinlock m_lock{"netdev pool"};
    bool m_initialized = false;
    Packet* m_free = nullptr;
    std::uint32_t m_count = 0;
    std::uint32_t m_min_free = 0;
    std::uint64_t m_allocations = 0;
    std::uint64_t m_failures = 0;
    std::atomic<std::uint32_t> m_starved{0}; // 32-bit: RV64 has no byte-sized AMOs
    Packet m_packets[kCount];
};

namespace {
constinit PacketPool g_pool;
} // namespace

void PacketRef::give_back(Packet* p) { g_pool.give(p); }

base::Result<PacketRef> allocate(std::size_t headroom) {
    if (headroom > kBufferSize) return base::Error::InvalidArgument;
    Packet* p = g_pool.take();
    if (!p) return base::Error::NoMemory;
    p->reset(headroom);
    p->owner_word = 0;
    return PacketRef::adopt(p);
}

PoolStats pool_stats() { return g_pool.stats(); }
void reset_min_free() { g_pool.reset_min_free(); }

} // namespace tessera::netdev
