// Priority message queues: the slot bookkeeping. Blocking, waking and the
// lock are the Channel's (ipc/channel.hpp); put() and get() run under its
// lock, with a free slot (a message) guaranteed by it.
#include <base/verify.hpp>
#include <cstring>
#include <ipc/message_queue.hpp>

namespace tessera::ipc::detail {

struct MessageQueueCore::SendOp {
    std::span<const std::byte> message;
    unsigned priority;
};

struct MessageQueueCore::ReceiveOp {
    std::span<std::byte> out;
    Received received;
};

void MessageQueueCore::put(Channel& c, void* op) {
    auto& q = static_cast<MessageQueueCore&>(c);
    auto& send = *static_cast<SendOp*>(op);
    Index slot;
    if (q.m_free != kNone) {
        slot = q.m_free;
        q.m_free = q.m_headers[slot].next;
    } else {
        VERIFY(q.m_never_used < q.capacity()); // the Channel counted a free slot
        slot = static_cast<Index>(q.m_never_used++);
    }
    SlotHeader& h = q.m_headers[slot];
    h.next = kNone;
    h.priority = static_cast<std::uint8_t>(send.priority);
    h.size = static_cast<std::uint32_t>(send.message.size());
    if (!send.message.empty())
        std::memcpy(q.m_data + std::size_t(slot) * q.m_max_size, send.message.data(), send.message.size());
    // Append to the level's FIFO.
    unsigned p = send.priority;
    if (q.m_level_tail[p] == kNone) q.m_level_head[p] = slot;
    else q.m_headers[q.m_level_tail[p]].next = slot;
    q.m_level_tail[p] = slot;
    q.m_levels |= 1u << p;
}

void MessageQueueCore::get(Channel& c, void* op) {
    auto& q = static_cast<MessageQueueCore&>(c);
    auto& receive = *static_cast<ReceiveOp*>(op);
    VERIFY(q.m_levels != 0); // the Channel counted a message
    unsigned p = 31 - static_cast<unsigned>(__builtin_clz(q.m_levels)); // most urgent level
    Index slot = q.m_level_head[p];
    SlotHeader& h = q.m_headers[slot];
    q.m_level_head[p] = h.next;
    if (h.next == kNone) {
        q.m_level_tail[p] = kNone;
        q.m_levels &= ~(1u << p);
    }
    if (h.size) std::memcpy(receive.out.data(), q.m_data + std::size_t(slot) * q.m_max_size, h.size);
    receive.received = {h.size, p};
    h.next = q.m_free;
    q.m_free = slot;
}

base::Result<void> MessageQueueCore::check_send(std::span<const std::byte> message, unsigned priority) const {
    if (message.size() > m_max_size || priority >= kMessagePriorities) return base::Error::InvalidArgument;
    return {};
}

base::Result<void> MessageQueueCore::send(std::span<const std::byte> message, unsigned priority,
                                          time::Ticks deadline) {
    TRY(check_send(message, priority));
    SendOp op{message, priority};
    return transfer(Direction::Send, put, &op, deadline);
}

base::Result<void> MessageQueueCore::try_send(std::span<const std::byte> message, unsigned priority) {
    TRY(check_send(message, priority));
    SendOp op{message, priority};
    return try_transfer(Direction::Send, put, &op);
}

// The buffer must take the largest message the queue accepts (POSIX
// mq_receive: EMSGSIZE), so success never depends on which message is next.
base::Result<Received> MessageQueueCore::receive(std::span<std::byte> out, time::Ticks deadline) {
    if (out.size() < m_max_size) return base::Error::InvalidArgument;
    ReceiveOp op{out, {}};
    TRY(transfer(Direction::Receive, get, &op, deadline));
    return op.received;
}

base::Result<Received> MessageQueueCore::try_receive(std::span<std::byte> out) {
    if (out.size() < m_max_size) return base::Error::InvalidArgument;
    ReceiveOp op{out, {}};
    TRY(try_transfer(Direction::Receive, get, &op));
    return op.received;
}

} // namespace tessera::ipc::detail
