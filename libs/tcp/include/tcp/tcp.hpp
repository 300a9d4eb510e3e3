#pragma once
// The TCP engine's direct API (no sockets layer).
//
//     auto l = tcp::listen(7, 8);                    // Listener*
//     auto c = tcp::accept(l.value(), time::kNever); // Connection*
//     auto n = tcp::receive(c.value(), buf, deadline); // 0 at end of stream
//     tcp::send(c.value(), data, deadline);          // bytes queued
//     tcp::close(c.value());                         // FIN; the handle is gone
//
// Deadlines are absolute time::Ticks: time::kNever blocks, a deadline
// already passed (or the try_ forms) never blocks and returns WouldBlock
// when nothing could be done, otherwise TimedOut when the deadline passes.
// A handle stays valid until the caller gives it back with close() or
// abort(), whatever the peer does; after a reset the calls return
// ConnectionReset (or ConnectionRefused/TimedOut, the connection's error).
//
// Readiness for event-driven servers: poll() returns the current Events;
// set_notify() registers a function called whenever a connection's or
// listener's events may have changed. The function runs with the TCP lock
// held (from the network thread or an API caller): it must be short and
// must not call into tcp (releasing a semaphore or posting to a queue is
// the intended use).
//
// SMP-safe (one sleeping lock over the engine). Threads only: not from
// interrupt context, and not from notify functions.
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>
#include <ipv4/ipv4.hpp>
#include <span>
#include <string_view>
#include <time/time.hpp>

namespace tessera::tcp {

// RFC 9293 3.3.2.
enum class State : std::uint8_t {
    Closed, Listen, SynSent, SynReceived, Established, FinWait1, FinWait2, CloseWait, Closing, LastAck, TimeWait,
};
[[nodiscard]] std::string_view state_name(State s);

struct Connection; // opaque: a slot in the preallocated table
struct Listener;

namespace event {
inline constexpr std::uint32_t kReadable = 1;   // data, end of stream or an error to report
inline constexpr std::uint32_t kWritable = 2;   // send buffer space
inline constexpr std::uint32_t kAcceptable = 4; // a listener has an established connection queued
inline constexpr std::uint32_t kClosed = 8;     // the connection is over (closed, reset, timed out)
} // namespace event
using Notify = void (*)(void* context, std::uint32_t events);

struct ConnectOptions {
    ipv4::Address source = ipv4::Address::any(); // any: the route's source address
    std::uint16_t source_port = 0;                // 0: an ephemeral port
    bool keepalive = false;
    // The user timeout (RFC 9293 3.8.3): how long sent data (the SYN
    // included) may stay unacknowledged before the connection is given up
    // with TimedOut, or with the soft ICMP error the network reported
    // (Unreachable). 0: only CONFIG_TCP_MAX_RETRIES ends it, after about a
    // minute of backed-off retransmissions; a control loop that must know
    // its peer is gone sooner sets this.
    std::uint32_t user_timeout_ms = 0;
};

// Listening. AddressInUse if the port has a listener, NoMemory when
// CONFIG_TCP_MAX_LISTENERS are in use. backlog: established connections
// waiting for accept() (1..CONFIG_TCP_MAX_CONNECTIONS).
[[nodiscard]] base::Result<Listener*> listen(std::uint16_t port, unsigned backlog);
// Stops listening: queued and half-open connections are reset.
void close(Listener* listener);
[[nodiscard]] base::Result<Connection*> accept(Listener* listener, time::Ticks deadline);
[[nodiscard]] inline base::Result<Connection*> try_accept(Listener* listener) { return accept(listener, 0); }

// Sets the user timeout of `c` (see ConnectOptions::user_timeout_ms), for
// accepted connections or to change it; 0 turns it off. It counts from
// when the oldest unacknowledged data was sent.
void set_user_timeout(Connection* c, std::uint32_t milliseconds);

// Active open. Unreachable (no route, or the SYN's retries ran out after
// an ICMP unreachable), NoMemory (table full), AddressInUse (no free
// ephemeral port), ConnectionRefused (a reset, or ICMP port or protocol
// unreachable), TimedOut.
[[nodiscard]] base::Result<Connection*> connect(ipv4::Address address, std::uint16_t port, time::Ticks deadline,
                                                const ConnectOptions& options = {});

// Queues up to data.size() bytes (at least one unless it returns an
// error); NotConnected after shutdown()/close or before the handshake.
[[nodiscard]] base::Result<std::size_t> send(Connection* c, std::span<const std::byte> data, time::Ticks deadline);
[[nodiscard]] inline base::Result<std::size_t> try_send(Connection* c, std::span<const std::byte> data) {
    return send(c, data, 0);
}
// Copies up to out.size() received bytes; 0 at the end of the stream.
[[nodiscard]] base::Result<std::size_t> receive(Connection* c, std::span<std::byte> out, time::Ticks deadline);
[[nodiscard]] inline base::Result<std::size_t> try_receive(Connection* c, std::span<std::byte> out) {
    return receive(c, out, 0);
}
// Half-close: a FIN after the queued data; receiving continues.
base::Result<void> shutdown(Connection* c);
// Graceful close (FIN after the queued data; RST instead if received data
// was left unread, RFC 9293 3.10.4). The engine finishes the close in the
// background; the handle is invalid on return.
void close(Connection* c);
// Sends a RST and frees the connection; the handle is invalid on return.
void abort(Connection* c);

[[nodiscard]] std::uint32_t poll(Connection* c);
[[nodiscard]] std::uint32_t poll(Listener* l);
void set_notify(Connection* c, Notify notify, void* context);
void set_notify(Listener* l, Notify notify, void* context);

struct ConnectionInfo {
    State state;
    ipv4::Address local_address, remote_address;
    std::uint16_t local_port, remote_port;
    std::uint32_t mss;                       // send MSS
    std::uint32_t cwnd, ssthresh;            // bytes
    std::uint32_t srtt_us, rttvar_us, rto_us;
    std::uint32_t send_window;               // peer's window, scaled
    std::uint32_t receive_window;            // what we advertise, scaled
    std::uint8_t send_scale, receive_scale;  // window shifts in use (0 when not negotiated)
    std::uint32_t send_queued;               // bytes in the send buffer (unacknowledged + unsent)
    std::uint32_t in_flight;                 // sequence space sent and not acknowledged
    std::uint32_t receive_queued;            // received bytes not yet read
    bool retransmit_timer, persist_timer;    // running now
    bool timestamps, sack;
    std::uint64_t bytes_in, bytes_out;       // payload delivered / acknowledged
    std::uint64_t segments_in, segments_out;
    std::uint64_t retransmits;               // segments sent again
    std::uint64_t timeouts;                  // retransmission timer expiries
    std::uint64_t fast_retransmits;
    std::uint64_t dup_acks;                  // duplicate ACKs received
    std::uint64_t out_of_order;              // segments queued out of order
    std::uint64_t zero_window_probes;
    std::uint64_t challenge_acks;
};
[[nodiscard]] base::Result<ConnectionInfo> info(Connection* c);
// Calls fn for every connection in use (listeners excluded), with the
// TCP lock held: fn must not call into tcp.
void for_each_connection(void (*fn)(const ConnectionInfo& info, void* context), void* context);

// CONFIG_TCP_ACK_MERGE: whether pure ACKs of a receive batch are merged,
// and how many one held ACK stands for at most before it is applied.
#ifdef CONFIG_TCP_ACK_MERGE
inline constexpr bool kAckMerge = true;
#else
inline constexpr bool kAckMerge = false;
#endif
inline constexpr unsigned kAckMergeLimit = 32;

struct Stats {
    std::uint64_t segments_received, segments_sent;
    std::uint64_t bad_checksum, malformed;   // dropped on input
    std::uint64_t no_connection;             // answered with RST (or dropped if RST)
    std::uint64_t resets_sent, resets_received;
    std::uint64_t challenge_acks;            // RFC 5961, sent
    std::uint64_t challenge_acks_suppressed; // beyond CONFIG_TCP_CHALLENGE_ACK_LIMIT per second (RFC 5961 7)
    std::uint64_t paws_drops;                // RFC 7323 5
    std::uint64_t out_of_window;             // unacceptable segments (ACKed and dropped)
    std::uint64_t invalid_acks_suppressed;   // ACKs to invalid pure ACKs not sent (CONFIG_TCP_INVALID_ACK_INTERVAL_MS)
    std::uint64_t syn_queue_full;            // SYNs dropped: listener's SYN queue (without CONFIG_TCP_SYN_COOKIES)
    std::uint64_t syn_cookies_sent;          // SYN-ACKs with a cookie: the SYN queue or the source's half-open share was full
    std::uint64_t syn_cookies_accepted;      // ... whose ACK came back valid and made a connection
    std::uint64_t syn_cookies_rejected;      // ACKs to a listener using cookies that carried no valid one (RST)
    std::uint64_t syn_per_source;            // SYNs (or cookie ACKs) dropped: per-source total limit, or half-open without cookies
    std::uint64_t table_full;                // SYNs dropped / connect() refused: no free slot
    std::uint64_t accept_queue_full;         // handshakes left half-open: backlog full
    std::uint64_t ooo_dropped;               // out-of-order segments beyond CONFIG_TCP_SACK_RANGES
    std::uint64_t predicted;                 // in-order payloads copied into the ring as they were summed
    std::uint64_t batch_acks;                // ACKs sent when a receive batch ended (CONFIG_TCP_ACK_STRETCH)
    std::uint64_t acks_merged;               // pure ACKs received that a later one of the batch superseded (CONFIG_TCP_ACK_MERGE)
    std::uint64_t delayed_acks;              // ACKs sent when the delayed-ACK timer expired
    std::uint64_t held_back;                 // segments not sent: the driver's queue was full (sent when it drains)
    std::uint64_t retransmits, timeouts, fast_retransmits;
    std::uint64_t active_opens, passive_opens, established_now;
    std::uint64_t connections_in_use, time_wait_now;
    std::uint64_t send_errors;               // ipv4::send failures (the segment counts as lost)
    std::uint64_t no_buffer;                 // packet pool empty when sending (held back, sent when one is freed)
    std::uint64_t icmp_errors;               // ICMP errors about a segment in flight, acted on
    std::uint64_t icmp_ignored;              // ... about no connection, or a sequence number not in flight
    std::uint64_t path_mtu_reductions;       // fragmentation needed: the MSS fell (RFC 1191)
};
[[nodiscard]] Stats stats();

// Test support: replaces ipv4::send for every segment the engine emits
// (nullptr restores it). The hook owns the packet (window = TCP header +
// payload, checksum filled) and runs with the TCP lock held: it must not
// call into tcp (queue the packet and deliver it later with inject()).
// It answers as ipv4::send would: Overloaded stands for a full driver
// queue (the engine holds the data back until some interface's
// transmit_space() says there is room).
using OutputHook = base::Result<void> (*)(netdev::PacketRef segment, ipv4::Address source,
                                          ipv4::Address destination, void* context);
void set_output_hook(OutputHook hook, void* context);
// Hands a segment to the engine as if ipv4 had delivered it (window = TCP
// header + payload). Threads; takes the TCP lock.
void inject(ipv4::Address source, ipv4::Address destination, netdev::PacketRef segment);

} // namespace tessera::tcp
