#pragma once
// UDP (RFC 768) over IPv4: sockets bound to a port, bounded receive
// queues, broadcast, checksums, ephemeral ports, port unreachable.
//
//     udp::Socket s;
//     TRY(s.bind(7));
//     std::byte buf[1500];
//     auto d = TRY(s.receive_from(buf, time::kNever));
//     TRY(s.send_to(d.source, d.source_port, {buf, d.length}));
//
// Threading: a Socket is used by one thread at a time (any thread but
// the network thread for blocking receives); datagrams are queued by the
// network thread. Not for interrupt context. SMP-safe. State under udp
// g_lock (a sync::Mutex inside netdev g_dispatch, never held across
// ipv4::send or a wait).
#include <atomic>
#include <base/result.hpp>
#include <cstdint>
#include <ipv4/ipv4.hpp>
#include <sched/wait.hpp>
#include <span>
#include <time/time.hpp>

namespace tessera::udp {

inline constexpr std::size_t kHeader = 8;
// A datagram is one packet buffer (fragmented by ipv4 beyond the MTU).
inline constexpr std::size_t kMaxPayload = netdev::kBufferSize - netdev::kDefaultHeadroom - kHeader;
inline constexpr std::uint16_t kEphemeralFirst = 49152;

struct Datagram {
    ipv4::Address source;
    std::uint16_t source_port;
    ipv4::Address destination; // ours, or a broadcast address
    std::size_t length;         // bytes copied into the caller's buffer
    bool truncated;             // the datagram was longer (the rest is lost)
};

class Socket {
public:
    constexpr Socket() = default;
    ~Socket() { close(); }
    Socket(const Socket&) = delete;
    Socket& operator=(const Socket&) = delete;

    // Binds to `port` (0: a free ephemeral port) on `local` (any(): every
    // address and broadcasts). AddressInUse, Busy if already bound.
    base::Result<void> bind(std::uint16_t port, ipv4::Address local = ipv4::Address::any());
    // Unbinds; queued datagrams are freed, a blocked receive_from returns
    // NotFound. Idempotent. The storage must outlive that receiver's return.
    void close();
    [[nodiscard]] std::uint16_t port() const { return m_port; }
    [[nodiscard]] bool bound() const { return m_port != 0; }
    // Sends out of this interface (broadcasts, DHCP before an address).
    void set_interface(netdev::Interface* iface) { m_interface = iface; }

    // Sends one datagram (binds an ephemeral port first if unbound).
    // MessageTooLong beyond kMaxPayload; ipv4::send's errors.
    base::Result<void> send_to(ipv4::Address destination, std::uint16_t port, std::span<const std::byte> data);
    // The oldest queued datagram, copied into `buffer`. Waits until
    // `deadline` (absolute ticks; time::kNever: forever): TimedOut;
    // deadline 0: WouldBlock at once if none. NotFound if unbound.
    base::Result<Datagram> receive_from(std::span<std::byte> buffer, time::Ticks deadline);
    [[nodiscard]] unsigned queued() const { return m_queued.load(std::memory_order_relaxed); }

private:
    friend struct Internals;
    Socket* m_next = nullptr;           // bound sockets list (under g_lock)
    std::uint16_t m_port = 0;
    ipv4::Address m_local;
    netdev::Interface* m_interface = nullptr;
    netdev::Packet* m_head = nullptr;   // queue (Packet::next; owner_word: source address/port)
    netdev::Packet* m_tail = nullptr;
    std::atomic<std::uint32_t> m_queued{0};
    sched::WaitQueue m_waiters;
};

struct Stats {
    std::uint64_t received;
    std::uint64_t delivered;       // queued to a socket
    std::uint64_t truncated;       // shorter than the header or its length field
    std::uint64_t bad_length;      // length field < 8
    std::uint64_t bad_checksum;
    std::uint64_t no_port;         // nobody bound (port unreachable sent unless broadcast)
    std::uint64_t queue_full;      // dropped at a full socket queue
    std::uint64_t sent;
    std::uint64_t send_errors;
};
Stats stats();

} // namespace tessera::udp
