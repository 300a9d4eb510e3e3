#pragma once
// The engine's private state: the connection table, listeners, and the
// per-connection control block (RFC 9293 3.3.1's TCB). Everything here is
// protected by g_lock (engine.cpp) unless a comment says otherwise.
#include <array>
#include <span>
#include <atomic>
#include <sched/wait.hpp>
#include <tcp/congestion.hpp>
#include <tcp/ranges.hpp>
#include <tcp/rtt.hpp>
#include <tcp/segment.hpp>
#include <tcp/tcp.hpp>

namespace tessera::tcp {

inline constexpr std::uint32_t kSendBuffer = CONFIG_TCP_SEND_BUFFER;
inline constexpr std::uint32_t kReceiveBuffer = CONFIG_TCP_RECEIVE_BUFFER;
static_assert((kSendBuffer & (kSendBuffer - 1)) == 0 && (kReceiveBuffer & (kReceiveBuffer - 1)) == 0,
              "buffer sizes must be powers of two");

struct Tuple {
    std::uint32_t local_address = 0, remote_address = 0;
    std::uint16_t local_port = 0, remote_port = 0;
    bool operator==(const Tuple&) const = default;
};

// Blocking: a thread records `events` (under g_lock), releases g_lock and
// waits on `waiters` while the counter is unchanged; every state change a
// waiter could care about bumps the counter and wakes all (under g_lock,
// the scheduler's lock nests inside).
struct Waitable {
    sched::WaitQueue waiters{};
    std::atomic<std::uint32_t> events{0};
    Notify notify = nullptr;
    void* notify_context = nullptr;
};

struct Listener {
    bool in_use = false;
    std::uint16_t port = 0;
    unsigned backlog = 0;
    unsigned half_open = 0;  // SYN-RECEIVED children
    unsigned queued = 0;     // established, waiting for accept()
    bool cookies_sent = false;     // SYN cookies: any sent, and the period of the last
    std::uint32_t cookie_period = 0;
    Connection* accept_head = nullptr;
    Connection* accept_tail = nullptr;
    Waitable wait;
};

struct Connection {
    State state = State::Closed;
    bool in_use = false;
    bool user_owned = false;   // a handle is out (until close/abort)
    bool accepted = false;     // passive: handed out by accept()
    bool fin_queued = false;   // shutdown/close asked for a FIN
    bool fin_received = false;
    bool fin_ahead = false;    // a FIN came at fin_ahead_at, beyond RCV.NXT or at it
    bool ack_now = false;
    bool transmit_held = false; // the driver's queue was full: resume_held() sends
    bool retransmit_held = false; // ... and what it refused was retransmit_first()'s segment
    bool keepalive = false;
    bool timestamps = false, sack = false, window_scaling = false; // negotiated options
    bool rtt_timing = false;
    bool error_set = false;
    base::Error error = base::Error::NotConnected;
    // An ICMP error that must not end the connection (RFC 1122 4.2.3.9):
    // reported instead of TimedOut if it does time out.
    bool soft_error_set = false;
    base::Error soft_error = base::Error::Unreachable;
    bool may_fragment = false; // the path MTU is below kMinPathMtu: segments go without DF
    Tuple tuple;
    ipv4::Path path;           // the cached way to the peer (route, next hop's MAC)
    Listener* listener = nullptr;   // SYN-RECEIVED/queued children of a listener
    Connection* hash_next = nullptr;
    Connection* accept_next = nullptr;

    // Send side (RFC 9293 3.3.1). Data bytes [snd_data, snd_data + send_len)
    // sit in send_buffer from send_head; the FIN, once queued, is at
    // snd_data + send_len.
    Seq iss, snd_una, snd_nxt, snd_max, snd_wl1, snd_wl2, snd_data;
    std::uint32_t snd_wnd = 0, max_snd_wnd = 0;
    std::uint8_t snd_scale = 0;
    std::uint32_t send_head = 0, send_len = 0;
    std::uint32_t mss = 536;   // send MSS, options excluded
    Seq rtt_seq;
    time::Ticks rtt_start = 0;
    RttEstimator rtt{CONFIG_TCP_MIN_RTO_MS * 1000u};
    CongestionState cc;
    const CongestionOps* cc_ops = nullptr;
    RangeSet sacked;           // send-side scoreboard
    unsigned retries = 0;
    unsigned probes = 0;       // zero-window or keep-alive probes unanswered
    time::Ticks probes_since = 0; // when the first of them went

    // Receive side: readable bytes [recv_head, recv_head + recv_len) of
    // receive_buffer are RCV.NXT - recv_len .. RCV.NXT; out-of-order data
    // is stored beyond them at its offset from RCV.NXT and tracked in ooo.
    Seq irs, rcv_nxt;
    std::uint8_t rcv_scale = 0;
    std::uint32_t recv_head = 0, recv_len = 0;
    std::uint32_t rcv_adv = 0;  // window last advertised (bytes)
    std::uint32_t rcv_adv_at_ack = 0; // rcv_adv when the last ACK went
    RangeSet ooo;
    Seq fin_ahead_at;
    unsigned unacked_segments = 0;
    bool ack_after_batch = false; // flush_batch_acks() owes this one an ACK
    // A pure ACK held back until the receive batch ends (CONFIG_TCP_ACK_MERGE):
    // a later one of the batch takes its place, any other segment for the
    // connection or a timer applies it first. What the segment carried.
    struct HeldAck {
        Seq seq, ack;
        std::uint32_t ts_value = 0, ts_echo = 0;
        std::uint16_t window = 0;
        std::uint16_t count = 0; // the ACKs it stands for; 0: none held
        bool has_timestamps = false;
    } held_ack;
    std::uint32_t ts_recent = 0;

    // Timers: absolute deadlines, kNever when off.
    time::Ticks rexmt_at = time::kNever, delack_at = time::kNever, persist_at = time::kNever,
                keepalive_at = time::kNever, close_at = time::kNever;
    unsigned persist_shift = 0;
    // User timeout (0: off) and when the oldest unacknowledged data was
    // sent, or its first ACK-less stretch began (start_rexmt).
    time::Ticks user_timeout = 0;
    time::Ticks unacked_since = 0;
    time::Ticks invalid_ack_after = 0; // ack_invalid(): no ACK to a pure ACK before this

    Waitable wait;
    ConnectionInfo counters{}; // the statistics fields only

    // The slot's buffers (all-zero arrays of their own, so they live in
    // .bss while the table, which has non-zero initial values, is in .data).
    std::span<std::byte> send_buffer;
    std::span<std::byte> receive_buffer;
};

} // namespace tessera::tcp
