#pragma once
// Packet buffers. Every frame the stack handles lives in a Packet taken
// from one preallocated pool (CONFIG_NETDEV_PACKETS buffers, no heap): a
// fixed buffer with a movable window [offset, offset + length) over it, so
// headers are pushed in front of a payload (transmit) or pulled off the
// front of a frame (receive) without copying.
//
// Ownership: a Packet has exactly one owner at a time, expressed by
// PacketRef, a move-only handle that returns the buffer to the pool when
// it is destroyed. Code that must park a packet somewhere a PacketRef
// cannot live (a driver's descriptor ring, a lock-free queue) calls
// release() to get the raw pointer and PacketRef::adopt() to take it back.
//
// SMP-safe. allocate() and the PacketRef destructor may be called from
// interrupt handlers: the pool is a free list under an IRQ-safe spinlock
// (a leaf in base/lock_order.hpp), never blocks, and fails with NoMemory
// (counted) when empty. The first free after an allocation found it empty
// schedules the add_transmit_ready() work (it takes netdev's queue lock
// and may wake the network thread), so drop a PacketRef only where a
// wake-up is allowed: not under the scheduler's lock or a netdev or driver
// spinlock. A Packet itself is not synchronized: only its owner touches it.
#include <base/result.hpp>
#include <base/verify.hpp>
#include <cstddef>
#include <cstdint>
#include <span>
#include <utility>

namespace tessera::netdev {

class Interface;

// Bytes of storage per buffer. A 1514-byte Ethernet frame (no FCS) plus
// kDefaultHeadroom leaves room to spare for trailers.
inline constexpr std::size_t kBufferSize = 2048 - 64;
// Enough for a driver header (virtio-net: 12 bytes), Ethernet (14), IPv4
// with options (60) and TCP with options (60), rounded up so the frame's
// IP header ends up 4-byte aligned after a 14-byte Ethernet header.
inline constexpr std::size_t kDefaultHeadroom = 162;
inline constexpr std::size_t kMaxFrame = 1514; // Ethernet header + 1500 bytes, no FCS
static_assert(kDefaultHeadroom + kMaxFrame <= kBufferSize);

class Packet {
public:
    // The current window: the bytes of the frame as seen by its owner.
    [[nodiscard]] std::span<std::byte> data() { return {m_storage + m_offset, m_length}; }
    [[nodiscard]] std::span<const std::byte> data() const { return {m_storage + m_offset, m_length}; }
    [[nodiscard]] std::byte* bytes() { return m_storage + m_offset; }
    [[nodiscard]] std::size_t length() const { return m_length; }
    [[nodiscard]] std::size_t headroom() const { return m_offset; }
    [[nodiscard]] std::size_t tailroom() const { return kBufferSize - m_offset - m_length; }

    // Grows the window by n bytes at the front (a header is about to be
    // written there); returns the new start, or nullptr (nothing changed)
    // if the headroom is too small.
    [[nodiscard]] std::byte* push(std::size_t n) {
        if (n > m_offset) return nullptr;
        m_offset = static_cast<std::uint16_t>(m_offset - n);
        m_length = static_cast<std::uint16_t>(m_length + n);
        return bytes();
    }
    // Drops n bytes from the front (a header was consumed); returns the
    // start of what was removed, or nullptr (nothing changed) if the window
    // is shorter than n.
    [[nodiscard]] std::byte* pull(std::size_t n) {
        if (n > m_length) return nullptr;
        std::byte* old = bytes();
        m_offset = static_cast<std::uint16_t>(m_offset + n);
        m_length = static_cast<std::uint16_t>(m_length - n);
        return old;
    }
    // Grows the window by n bytes at the end; returns where they start, or
    // nullptr (nothing changed) if the tailroom is too small.
    [[nodiscard]] std::byte* put(std::size_t n) {
        if (n > tailroom()) return nullptr;
        std::byte* tail = bytes() + m_length;
        m_length = static_cast<std::uint16_t>(m_length + n);
        return tail;
    }
    // Shortens the window to `length` bytes (no-op if already shorter):
    // drops link-layer padding or a trailer.
    void trim(std::size_t length) {
        if (length < m_length) m_length = static_cast<std::uint16_t>(length);
    }
    // Empties the window and places its start `headroom` bytes into the
    // buffer (VERIFY: headroom <= kBufferSize).
    void reset(std::size_t headroom = kDefaultHeadroom) {
        VERIFY(headroom <= kBufferSize);
        m_offset = static_cast<std::uint16_t>(headroom);
        m_length = 0;
        m_link_offset = 0;
        m_interface = nullptr;
    }
    // Sets the window to [offset, offset + length) of the whole buffer
    // (drivers: after the device wrote `length` bytes at `offset`).
    // InvalidArgument if it does not fit.
    [[nodiscard]] base::Result<void> set_window(std::size_t offset, std::size_t length) {
        if (offset > kBufferSize || length > kBufferSize - offset) return base::Error::InvalidArgument;
        m_offset = static_cast<std::uint16_t>(offset);
        m_length = static_cast<std::uint16_t>(length);
        return {};
    }
    // The whole buffer, for drivers that hand it to a device.
    [[nodiscard]] std::span<std::byte> storage() { return {m_storage, kBufferSize}; }

    // The interface a received frame came in on (nullptr for packets
    // built for transmission). Set by netdev::receive().
    [[nodiscard]] Interface* interface() const { return m_interface; }
    void set_interface(Interface* i) { m_interface = i; }

    // Where the link-layer (Ethernet) header of a received frame starts,
    // remembered by the dispatcher before it pulls the header, so handlers
    // (ARP, a reflector) can read the addresses. nullptr if unknown.
    [[nodiscard]] const std::byte* link_header() const {
        return m_link_offset == 0 ? nullptr : m_storage + (m_link_offset - 1);
    }
    void mark_link_header() { m_link_offset = static_cast<std::uint16_t>(m_offset + 1); }

    // Free for the current owner's use (a driver's descriptor id, a
    // protocol's queue link); zeroed on allocation.
    std::uintptr_t owner_word = 0;
    Packet* next = nullptr; // ditto: single-link queues without allocation

private:
    friend class PacketPool;
    std::uint16_t m_offset = 0;
    std::uint16_t m_length = 0;
    // Every member starts zero so the pool's array lives in .bss.
    std::uint16_t m_link_offset = 0; // offset + 1 of the link header; 0 = none
    std::uint16_t m_pool_marker = 0; // kInPool while on the free list (catches double free)
    Interface* m_interface = nullptr;
    alignas(64) std::byte m_storage[kBufferSize]{};
};

class [[nodiscard]] PacketRef {
public:
    constexpr PacketRef() = default;
    PacketRef(PacketRef&& o) : m_packet(std::exchange(o.m_packet, nullptr)) {}
    PacketRef& operator=(PacketRef&& o) {
        if (this != &o) {
            reset();
            m_packet = std::exchange(o.m_packet, nullptr);
        }
        return *this;
    }
    PacketRef(const PacketRef&) = delete;
    PacketRef& operator=(const PacketRef&) = delete;
    ~PacketRef() { reset(); }

    // Takes ownership of a packet previously release()d.
    [[nodiscard]] static PacketRef adopt(Packet* p) { return PacketRef(p); }
    // Gives up ownership without freeing; the caller must adopt() it later.
    [[nodiscard]] Packet* release() { return std::exchange(m_packet, nullptr); }
    // Returns the buffer to the pool now (if any). Inline: every
    // moved-from handle is reset when it goes out of scope.
    void reset() {
        if (m_packet) give_back(std::exchange(m_packet, nullptr));
    }

    explicit operator bool() const { return m_packet != nullptr; }
    Packet* get() const { return m_packet; }
    Packet* operator->() const { VERIFY(m_packet); return m_packet; }
    Packet& operator*() const { VERIFY(m_packet); return *m_packet; }

private:
    explicit PacketRef(Packet* p) : m_packet(p) {}
    static void give_back(Packet* p);
    Packet* m_packet = nullptr;
};

// Takes a buffer from the pool with an empty window `headroom` bytes in.
// NoMemory (counted in PoolStats::failures) when the pool is empty.
// Interrupt context: allowed.
[[nodiscard]] base::Result<PacketRef> allocate(std::size_t headroom = kDefaultHeadroom);

struct PoolStats {
    std::uint32_t total;        // CONFIG_NETDEV_PACKETS
    std::uint32_t free;         // now
    std::uint32_t min_free;     // lowest `free` since boot (or reset_min_free())
    std::uint64_t allocations;
    std::uint64_t failures;     // allocate() found the pool empty
};
[[nodiscard]] PoolStats pool_stats();
void reset_min_free();

} // namespace tessera::netdev
