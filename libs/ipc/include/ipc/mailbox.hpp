#pragma once
// Mailbox<T, N>: a bounded FIFO of N messages of type T, stored inside the
// object (nothing is ever allocated; a constinit global works).
//
//     ipc::Mailbox<Event, 16> g_events;          // an IRQ handler try_send()s,
//     Event e = TRY(g_events.receive());         // a thread receives
//
// send() blocks while the mailbox is full, receive() while it is empty;
// both take an absolute deadline (TimedOut when it passes first, and then
// nothing was sent or taken). try_send()/try_receive() never block
// (WouldBlock). Blocked senders get free slots in wait-queue order (most
// urgent first, FIFO among equals) and a thread that finds room does not
// overtake them; the exact guarantee, and why no wake-up is lost, is in
// ipc/channel.hpp. Messages leave in the order they entered.
//
// SMP-safe. try_send() and try_receive() may be called from interrupt
// handlers (deferring work from an IRQ to a thread); send() and receive()
// only from threads. Lock order: ipc/channel.hpp.
//
// Messages must be trivially copyable: a message is copied with memcpy
// under a spinlock with interrupts off, possibly in an interrupt handler,
// where a copy must be unable to fail, block or run arbitrary code.
// (Move-only types with owning state would also leak if a mailbox were
// dropped with messages in it.) Send a pointer or a handle for anything
// bigger or owning.
#include <base/result.hpp>
#include <bit>
#include <cstddef>
#include <ipc/channel.hpp>
#include <type_traits>

namespace tessera::ipc {

template <typename T>
concept MailboxMessage = std::is_trivially_copyable_v<T>;

template <MailboxMessage T, std::size_t N>
class Mailbox : public detail::Channel {
    static_assert(N > 0 && N < (1u << 31), "a mailbox holds 1 .. 2^31-1 messages");

public:
    constexpr Mailbox() : Channel(N) {}

    // (The const_casts feed one Transfer signature for both directions;
    // put() only reads the message.)
    [[nodiscard]] base::Result<void> send(const T& message, time::Ticks deadline = time::kNever) {
        return transfer(Direction::Send, put, const_cast<T*>(&message), deadline);
    }
    [[nodiscard]] base::Result<void> try_send(const T& message) {
        return try_transfer(Direction::Send, put, const_cast<T*>(&message));
    }
    [[nodiscard]] base::Result<T> receive(time::Ticks deadline = time::kNever) {
        Slot out;
        TRY(transfer(Direction::Receive, get, &out, deadline));
        return std::bit_cast<T>(out);
    }
    [[nodiscard]] base::Result<T> try_receive() {
        Slot out;
        TRY(try_transfer(Direction::Receive, get, &out));
        return std::bit_cast<T>(out);
    }

private:
    // Raw storage, so that T need not be default-constructible.
    struct Slot {
        alignas(T) std::byte bytes[sizeof(T)];
    };

    // Transfers, under the channel's lock with room (a message) guaranteed.
    // __builtin_memcpy: the kernel builds with -ffreestanding, where a
    // plain memcpy of a constant size stays a call; this one is a few
    // loads and stores.
    static void put(Channel& c, void* message) {
        auto& self = static_cast<Mailbox&>(c);
        __builtin_memcpy(&self.m_slots[self.m_tail], message, sizeof(T));
        self.m_tail = self.m_tail + 1 == N ? 0 : self.m_tail + 1;
    }
    static void get(Channel& c, void* out) {
        auto& self = static_cast<Mailbox&>(c);
        __builtin_memcpy(out, &self.m_slots[self.m_head], sizeof(T));
        self.m_head = self.m_head + 1 == N ? 0 : self.m_head + 1;
    }

    std::uint32_t m_head = 0; // oldest message; both under the channel's lock
    std::uint32_t m_tail = 0; // next free slot
    Slot m_slots[N] = {};
};

} // namespace tessera::ipc
