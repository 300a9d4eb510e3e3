// Split virtqueues (virtio 1.1, section 2.6). The driver owns the
// descriptor table and the available ring, the device the used ring.
// Ordering rules this file implements (2.6.13 and 2.6.14):
//   - descriptors and the avail ring entry are written before avail->idx
//     (a full fence between them: the device may be another host thread);
//   - avail->idx is written before the device is notified, and the
//     used->flags NO_NOTIFY check comes after avail->idx is published;
//   - used->idx is read before the used ring entries it covers.
#include <arch/cpu.hpp>
#include <cstring>
#include <mm-buddy/buddy.hpp>
#include <virtio/virtio.hpp>

namespace tessera::virtio {

// 2.6.5: 16 bytes, 16-byte aligned table.
struct Queue::Descriptor {
    std::uint64_t address;
    std::uint32_t length;
    std::uint16_t flags;
    std::uint16_t next;
};
// 2.6.6: flags, idx, ring[size], used_event (unused: no EVENT_IDX).
struct Queue::Avail {
    std::uint16_t flags;
    std::uint16_t idx;
    std::uint16_t ring[];
};
// 2.6.8: flags, idx, ring[size] of {id, len}, avail_event.
struct Queue::Used {
    struct Element {
        std::uint32_t id;
        std::uint32_t length;
    };
    std::uint16_t flags;
    std::uint16_t idx;
    Element ring[];
};

namespace {
constexpr std::uint16_t kDescNext = 1;
constexpr std::uint16_t kDescWrite = 2;
constexpr std::uint16_t kAvailNoInterrupt = 1;
constexpr std::uint16_t kUsedNoNotify = 1;

template <typename T>
volatile T& shared(T& x) { return const_cast<volatile T&>(x); } // memory the device also writes
} // namespace

base::Result<void> Queue::allocate_rings(std::uint16_t size) {
    static_assert(sizeof(Descriptor) == 16);
    // One block: the table (16-byte aligned), the avail ring (2), then the
    // used ring at a 4-byte boundary (2.6, alignment table).
    std::size_t desc_bytes = 16u * size;
    std::size_t avail_bytes = 6 + 2u * size;
    std::size_t used_offset = (desc_bytes + avail_bytes + 3) & ~std::size_t{3};
    std::size_t total = used_offset + 6 + 8u * size;
    void* memory = TRY(mm_buddy::alloc_pages(mm_buddy::order_for(total)));
    std::memset(memory, 0, total);
    auto* bytes = static_cast<std::uint8_t*>(memory);
    arch::SpinlockGuard guard(m_lock);
    m_memory = memory;
    m_desc = reinterpret_cast<Descriptor*>(bytes);
    m_avail = reinterpret_cast<Avail*>(bytes + desc_bytes);
    m_used = reinterpret_cast<Used*>(bytes + used_offset);
    m_size = size;
    // Free descriptors are chained through their `next` fields.
    for (std::uint16_t i = 0; i < size; ++i) m_desc[i].next = static_cast<std::uint16_t>(i + 1);
    m_free_head = 0;
    m_free_count = size;
    for (unsigned i = 0; i < kMaxSize; ++i) {
        m_tokens[i] = nullptr;
        m_in_flight[i] = false;
    }
    m_avail_idx = m_kicked_idx = m_last_used = 0;
    m_stats = {};
    return {};
}

base::Result<void> Queue::add(std::span<const Segment> segments, void* token) {
    if (segments.empty()) return base::Error::InvalidArgument;
    arch::SpinlockGuard guard(m_lock);
    if (!m_size) return base::Error::InvalidArgument;
    if (segments.size() > m_free_count) {
        ++m_stats.full;
        return base::Error::Overloaded;
    }
    std::uint16_t head = m_free_head;
    std::uint16_t i = head, last = head;
    for (std::size_t k = 0; k < segments.size(); ++k) {
        Descriptor& d = m_desc[i];
        d.address = reinterpret_cast<std::uint64_t>(segments[k].address);
        d.length = segments[k].length;
        d.flags = static_cast<std::uint16_t>((segments[k].device_writes ? kDescWrite : 0) |
                                             (k + 1 < segments.size() ? kDescNext : 0));
        last = i;
        i = d.next; // free-list link, or the chain's next when kDescNext is set
    }
    m_free_head = m_desc[last].next;
    m_free_count = static_cast<std::uint16_t>(m_free_count - segments.size());
    m_tokens[head] = token;
    m_in_flight[head] = true;
    m_avail->ring[m_avail_idx & (m_size - 1)] = head;
    arch::fence(); // descriptors and ring entry before the index (2.6.13)
    ++m_avail_idx;
    shared(m_avail->idx) = m_avail_idx;
    ++m_stats.added;
    return {};
}

bool Queue::kick() {
    bool notify;
    {
        arch::SpinlockGuard guard(m_lock);
        if (!m_size || m_kicked_idx == m_avail_idx) return false;
        m_kicked_idx = m_avail_idx;
        // avail->idx must be visible before we read the device's
        // suppression flag, or we could skip a notification it needs
        // (2.6.13.6).
        arch::fence();
        notify = !(shared(m_used->flags) & kUsedNoNotify);
        if (notify) ++m_stats.notifications;
    }
    if (notify) m_device->notify(m_index);
    return notify;
}

bool Queue::pop(void*& token, std::uint32_t& written) {
    arch::SpinlockGuard guard(m_lock);
    if (!m_size) return false;
    std::uint16_t used_idx = shared(m_used->idx);
    if (static_cast<std::uint16_t>(used_idx - m_last_used) > m_size) {
        // More entries than the ring holds: none of them can be trusted.
        ++m_stats.bogus;
        m_last_used = used_idx;
        return false;
    }
    std::uint32_t id = 0;
    for (;;) {
        if (used_idx == m_last_used) return false;
        arch::fence(); // the index before the entries it publishes (2.6.14)
        const Used::Element& e = m_used->ring[m_last_used & (m_size - 1)];
        id = shared(e.id);
        written = shared(e.length);
        ++m_last_used;
        // An id out of range, or of a chain the device does not hold (a
        // free descriptor, a duplicate), would corrupt the free list.
        if (id < m_size && m_in_flight[id]) break;
        ++m_stats.bogus;
    }
    m_in_flight[id] = false;
    token = m_tokens[id];
    m_tokens[id] = nullptr;
    // Give the chain back to the free list.
    std::uint16_t i = static_cast<std::uint16_t>(id), count = 1;
    while (m_desc[i].flags & kDescNext) {
        i = m_desc[i].next;
        ++count;
    }
    m_desc[i].next = m_free_head;
    m_free_head = static_cast<std::uint16_t>(id);
    m_free_count = static_cast<std::uint16_t>(m_free_count + count);
    ++m_stats.used;
    return true;
}

unsigned Queue::used_waiting() const {
    // m_last_used belongs to whoever pops; a poller on another hart may
    // read it stale, which only makes the answer a snapshot.
    return m_size ? static_cast<std::uint16_t>(shared(m_used->idx) - m_last_used) : 0;
}

void Queue::disable_interrupts() {
    arch::SpinlockGuard guard(m_lock);
    if (m_size) shared(m_avail->flags) = kAvailNoInterrupt;
}

void Queue::disable_interrupts_if_idle() {
    // Already off, the usual case (drivers call this after every reap):
    // nothing to do and no lock to take, since leaving them on is always
    // safe. m_avail is set once, before the queue is used.
    if (m_avail && (shared(m_avail->flags) & kAvailNoInterrupt)) return;
    arch::SpinlockGuard guard(m_lock);
    if (m_size && m_free_count == m_size) shared(m_avail->flags) = kAvailNoInterrupt;
}

bool Queue::enable_interrupts() {
    arch::SpinlockGuard guard(m_lock);
    if (!m_size) return false;
    shared(m_avail->flags) = 0;
    // Publish the flag before looking for work that raced with it.
    arch::fence();
    return shared(m_used->idx) != m_last_used;
}

unsigned Queue::free_descriptors() {
    arch::SpinlockGuard guard(m_lock);
    return m_free_count;
}

Queue::Stats Queue::stats() {
    arch::SpinlockGuard guard(m_lock);
    return m_stats;
}

} // namespace tessera::virtio
