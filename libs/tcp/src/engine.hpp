#pragma once
// The engine's private state and the functions its files share: the
// connection table, listeners, the per-connection control block (RFC 9293
// 3.3.1's TCB). Everything here is protected by g_lock unless a comment
// says otherwise.
//
// The engine's files, each one part of it:
//   engine.cpp       the table, lookup, waiting, the connection lifecycle
//   output.cpp       segments out: windows, transmit, retransmission, RSTs
//   input.cpp        segments in (RFC 9293 3.10.7), merged ACKs
//   listen.cpp       segments for no connection: SYN queue, SYN cookies
//   icmp_errors.cpp  ICMP errors about our segments, path MTU
//   timers.cpp       retransmission, probes, keep-alive, delayed and batch ACKs
//   api.cpp          the public API (tcp/tcp.hpp)
#include <array>
#include <span>
#include <atomic>
#include <base/result.hpp>
#include <netdev/interface.hpp>
#include <sync/mutex.hpp>
#include <time/callout.hpp>
#include <time/time.hpp>
#include <algorithm>
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

// ---------------------------------------------------------------- shared state

inline constexpr unsigned kMaxConnections = CONFIG_TCP_MAX_CONNECTIONS;
inline constexpr unsigned kMaxKeepaliveProbes = 9;
inline constexpr std::uint16_t kEphemeralFirst = 49152;

extern sync::Mutex g_lock;
extern std::array<Connection, kMaxConnections> g_connections;
extern std::array<Listener, CONFIG_TCP_MAX_LISTENERS> g_listeners;
extern Stats g_stats;
extern std::uint16_t g_next_port;
extern OutputHook g_output_hook; // set_output_hook(): tests' wire
extern void* g_output_context;
// The timer callout (timers.cpp), the earliest deadline it is armed for,
// and whether that changed since it was last armed.
extern time::Callout g_callout;
extern time::Ticks g_callout_at;
extern bool g_callout_moved;
extern netdev::Work g_batch_ack_work;  // flush_batch_acks() after the receive batch
extern netdev::Work g_resume_work;     // resume_held() when a driver queue has room

// Every deadline that is not kNever is set through here: it keeps the
// callout no later than the earliest (timers.cpp).
inline void set_deadline(time::Ticks& field, time::Ticks at) {
    field = at;
    if (at < g_callout_at) {
        g_callout_at = at;
        g_callout_moved = true;
    }
}

inline time::Ticks ms(std::uint64_t n) { return time::from_ns(n * 1'000'000); }
inline time::Ticks us(std::uint64_t n) { return time::from_ns(n * 1'000); }
inline std::uint32_t now_ms() { return static_cast<std::uint32_t>(time::to_ns(time::now()) / 1'000'000); }

inline std::uint32_t receive_space(const Connection& c) { return kReceiveBuffer - c.recv_len; }
inline std::uint32_t flight(const Connection& c) { return static_cast<std::uint32_t>(c.snd_max - c.snd_una); }
inline Seq data_end(const Connection& c) { return c.snd_data + c.send_len; }
inline bool fin_sent(const Connection& c) { return c.fin_queued && c.snd_max == data_end(c) + 1; }
inline bool fin_acked(const Connection& c) { return c.fin_queued && c.snd_una == data_end(c) + 1; }

// ---------------------------------------------------------------- engine.cpp

[[nodiscard]] Connection* lookup(const Tuple& t);
[[nodiscard]] Listener* find_listener(std::uint16_t port);
// `one`: the event is a single item only one waiter can take (a connection
// queued for accept), so one waiter is woken, not every thread of a pool
// (a woken waiter that finds the item gone waits again, and a thread
// between its check and its wait sees the counter move and does not
// sleep, so the item is never left with every waiter asleep).
inline void notify(Waitable& w, std::uint32_t events, bool one = false) {
    w.events.fetch_add(1, std::memory_order_release);
    if (one) sched::wake_one(w.waiters);
    else sched::wake_all(w.waiters);
    if (w.notify) w.notify(w.notify_context, events);
}

[[nodiscard]] inline std::uint32_t readiness(const Connection& c) {
    std::uint32_t e = 0;
    if (c.recv_len || c.fin_received || c.error_set) e |= event::kReadable;
    bool can_write = c.state == State::Established || c.state == State::CloseWait;
    if ((can_write && !c.fin_queued && c.send_len < kSendBuffer) || c.error_set) e |= event::kWritable;
    if (c.state == State::Closed || c.state == State::TimeWait || c.error_set) e |= event::kClosed;
    return e;
}

inline void wake(Connection& c) { notify(c.wait, readiness(c)); }

// Drops g_lock, waits for w's next event (or the deadline), retakes it.
[[nodiscard]] base::Error wait_for_event(Waitable& w, time::Ticks deadline, bool waited_before);

inline void set_state(Connection& c, State s) {
    if (c.state == State::Established) --g_stats.established_now;
    if (c.state == State::TimeWait) --g_stats.time_wait_now;
    c.state = s;
    if (s == State::Established) ++g_stats.established_now;
    if (s == State::TimeWait) ++g_stats.time_wait_now;
}
void release_slot(Connection& c);
void enter_closed(Connection& c, bool has_error, base::Error e);
void enter_time_wait(Connection& c);
void reset_connection(Connection& c, base::Error e);
[[nodiscard]] Connection* allocate_slot(const Tuple& t);
[[nodiscard]] std::uint32_t route_mss(ipv4::Address remote);
[[nodiscard]] std::uint8_t receive_scale();
void negotiate(Connection& c, const Options& o, bool we_offered_all);
[[nodiscard]] base::Result<void> ensure_started();

// ---------------------------------------------------------------- output.cpp

// What became of a segment handed to transmit().
enum class Sent {
    Yes,
    Lost, // ipv4 or a lower layer refused it: a loss the timers recover
    Held, // no pool buffer, or the driver's queue was full: nothing went
          // out, and the connection is resumed when there is room again
          // (resume_held())
};
Sent transmit(Connection& c, Seq seq, std::uint8_t flags, std::uint32_t data_offset, std::uint32_t data_len);
bool send_stateless(const Tuple& t, const Segment& s);
void send_reset_for(const Tuple& t, const Segment& in);

// rcv_adv is relative to RCV.NXT: consumption of the window by data moves
// the right edge's distance.
inline void consume_advertised(Connection& c, std::uint32_t n) { c.rcv_adv = c.rcv_adv > n ? c.rcv_adv - n : 0; }

// The user timeout (0: off) counted from `since`: whether it has passed,
// and a timer's time pulled in so that the give-up it brings is on time,
// not at the next backed-off expiry.
[[nodiscard]] inline bool past_user_timeout(const Connection& c, time::Ticks since) {
    return c.user_timeout && time::now() - since >= c.user_timeout;
}
[[nodiscard]] inline time::Ticks before_user_timeout(const Connection& c, time::Ticks since, time::Ticks at) {
    return c.user_timeout ? std::min(at, since + c.user_timeout) : at;
}

// Arms the retransmission timer unless it runs. Armed with no expiry since
// the last progress, it starts the user timeout's clock.
inline void start_rexmt(Connection& c) {
    if (c.rexmt_at != time::kNever) return;
    time::Ticks now = time::now();
    if (c.retries == 0) c.unacked_since = now;
    set_deadline(c.rexmt_at, before_user_timeout(c, c.unacked_since, now + us(c.rtt.rto())));
}
void output(Connection& c);
void retransmit_first(Connection& c);
void challenge_ack(Connection& c);
void ack_invalid(Connection& c, const Segment& s);

// ---------------------------------------------------------------- input.cpp

// `found`: the connection of tuple t, or nullptr (the caller looked it up).
void input_segment(const Tuple& t, const Segment& s, Connection* found);
void handle_segment(ipv4::Address source, ipv4::Address destination, std::span<const std::byte> bytes,
                    bool may_hold);
void ipv4_handler(const ipv4::Header& header, netdev::PacketRef packet, void*);
void apply_held_acks();

// ---------------------------------------------------------------- listen.cpp

// A segment that belongs to no connection: a listener's (SYN, SYN cookie
// ACK) or answered with a RST.
void input_without_connection(const Tuple& t, const Segment& s);

// ---------------------------------------------------------------- icmp_errors.cpp

void on_icmp_error(const ipv4::TransportError& e, void*);

// ---------------------------------------------------------------- timers.cpp

// Under g_lock (the end of every segment and API call, and before an API
// call sleeps): applies what set_deadline() decided.
inline void arm_timer_callout() {
    if (!g_callout_moved) return;
    g_callout_moved = false;
    (void)g_callout.start_at(g_callout_at);
}
[[nodiscard]] time::Ticks next_probe_at(const Connection& c, time::Ticks at);

// g_lock for a scope; arms the timer callout for what the scope set on leaving.
struct Guard {
    Guard() { g_lock.lock(); }
    ~Guard() {
        arm_timer_callout();
        g_lock.unlock();
    }
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
};

} // namespace tessera::tcp
