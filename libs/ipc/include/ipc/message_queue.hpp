#pragma once
// MessageQueue<MaxMsgSize, Capacity>: a POSIX-style message queue
// (mq_send/mq_receive semantics) of up to Capacity messages of 0 ..
// MaxMsgSize bytes each, with priorities 0..31. Storage (Capacity slots of
// MaxMsgSize bytes) is inside the object; nothing is ever allocated.
//
// receive() returns the oldest message of the highest priority present
// (higher number first, FIFO within a priority), like mq_receive. As in
// POSIX, a message longer than the queue's maximum is refused
// (InvalidArgument, POSIX's EMSGSIZE), and so is a receive buffer shorter
// than the maximum, even if the next message would fit: whether a receive
// succeeds must not depend on which message happens to be next. Priorities
// above 31 are InvalidArgument. send() blocks while all slots are in use,
// receive() while the queue is empty; deadlines are absolute (TimedOut:
// nothing sent or taken). try_send()/try_receive() never block
// (WouldBlock). Blocked threads are served as for mailboxes
// (ipc/channel.hpp: most urgent first, FIFO among equals, no overtaking).
//
// Picking is O(1): a 32-bit map of the non-empty priority levels (highest
// set bit), and per level a FIFO list of slots, linked through the slots.
// The code is a non-template core (src/message_queue.cpp) over storage the
// template places inline, so each <MaxMsgSize, Capacity> pair adds only
// its arrays. Copies are memcpy under the queue's spinlock with interrupts
// off: keep MaxMsgSize small (tens to hundreds of bytes) where interrupt
// latency matters, or send references.
//
// SMP-safe. try_send() and try_receive() may be called from interrupt
// handlers; send() and receive() only from threads.
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>
#include <ipc/channel.hpp>
#include <span>

namespace tessera::ipc {

inline constexpr unsigned kMessagePriorities = 32; // 0 (lowest) .. 31

struct Received {
    std::size_t size;
    unsigned priority;
};

namespace detail {

class MessageQueueCore : public Channel {
public:
    std::size_t max_message_size() const { return m_max_size; }

    [[nodiscard]] base::Result<void> send(std::span<const std::byte> message, unsigned priority,
                                          time::Ticks deadline = time::kNever);
    [[nodiscard]] base::Result<void> try_send(std::span<const std::byte> message, unsigned priority);
    [[nodiscard]] base::Result<Received> receive(std::span<std::byte> out, time::Ticks deadline = time::kNever);
    [[nodiscard]] base::Result<Received> try_receive(std::span<std::byte> out);

protected:
    using Index = std::uint16_t;
    struct SlotHeader {
        Index next;          // next slot in its level's FIFO, or in the free list
        std::uint8_t priority;
        std::uint32_t size;
    };

    // `headers` and `data` (capacity · max_size bytes) belong to the
    // derived object and outlive this one.
    constexpr MessageQueueCore(SlotHeader* headers, std::byte* data, std::uint32_t capacity, std::uint32_t max_size)
        : Channel(capacity), m_headers(headers), m_data(data), m_max_size(max_size) {
        for (Index& h : m_level_head) h = kNone;
        for (Index& t : m_level_tail) t = kNone;
    }

private:
    static constexpr Index kNone = 0xffff;
    struct SendOp;
    struct ReceiveOp;

    base::Result<void> check_send(std::span<const std::byte> message, unsigned priority) const;
    static void put(Channel& c, void* op);
    static void get(Channel& c, void* op);

    // All under the channel's lock (taken by Channel around put/get).
    SlotHeader* const m_headers;
    std::byte* const m_data;
    const std::uint32_t m_max_size;
    std::uint32_t m_levels = 0;  // bit p set: level p has messages
    Index m_level_head[kMessagePriorities] = {};
    Index m_level_tail[kMessagePriorities] = {};
    Index m_free = kNone;        // slots freed by receives, linked by next
    std::uint32_t m_never_used = 0; // slots [m_never_used, capacity) were never used
};

} // namespace detail

template <std::size_t MaxMsgSize, std::size_t Capacity>
class MessageQueue : public detail::MessageQueueCore {
    static_assert(Capacity > 0 && Capacity < 0xffff, "slots are indexed by 16 bits");
    static_assert(MaxMsgSize < (1u << 31));

public:
    constexpr MessageQueue() : MessageQueueCore(m_header_storage, m_data_storage, Capacity, MaxMsgSize) {}

private:
    SlotHeader m_header_storage[Capacity] = {};
    std::byte m_data_storage[Capacity * MaxMsgSize == 0 ? 1 : Capacity * MaxMsgSize] = {};
};

} // namespace tessera::ipc
