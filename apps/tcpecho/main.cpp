// tcpecho: RFC 862 echo over TCP port 7, one worker thread per connection
// from a fixed pool (kWorkers). The host-side test (test/test_tcp.py)
// connects through QEMU's SLIRP hostfwd. For support/bench.py three more
// services, one connection at a time each:
//   port 9   discard (RFC 863): reads until the peer closes
//   port 19  source: sends kSourceBytes of a pattern, then closes
//   port 8   instret: sends one line of four decimal numbers and closes:
//            this hart's retired-instruction counter; the same minus the
//            scheduler's idle time (under -icount shift=0 rdinstret
//            follows the virtual clock, which runs on while the hart
//            waits in wfi: 1 ns = 1 instruction); the idle time and the
//            time since boot, both in ns. bench.py reads it before and
//            after a transfer: guest instructions per byte / per
//            connection, and the share of the run the guest was idle.
//   port 11  stats: one line of `name=value` counters (ipv4, tcp, the
//            netdev pool and eth0) and closes; test/test_tcp_raw.py reads
//            it to check that bad input was dropped and counted and that
//            no packet buffer leaked
#include <arch/csr.hpp>
#include <base/format.hpp>
#include <ipv4/ipv4.hpp>
#include <klog/klog.hpp>
#include <netdev/interface.hpp>
#include <netdev/packet.hpp>
#include <sched/sched.hpp>
#include <tcp/tcp.hpp>
#include <virtio-net/virtio_net.hpp>

#include <iterator>

using namespace tessera;

namespace {

constexpr unsigned kWorkers = 40;
constexpr std::uint16_t kPort = 7;
constinit std::byte g_buffers[kWorkers][8192];
constinit tcp::Listener* g_listener = nullptr;

// Sends all of `data` (blocking); false if the connection failed.
bool send_all(tcp::Connection* c, std::span<const std::byte> data) {
    while (!data.empty()) {
        auto r = tcp::send(c, data, time::kNever);
        if (!r.ok()) return false;
        data = data.subspan(r.value());
    }
    return true;
}

void worker(void* arg) {
    auto index = reinterpret_cast<std::uintptr_t>(arg);
    std::span<std::byte> buffer(g_buffers[index]);
    for (;;) {
        auto a = tcp::accept(g_listener, time::kNever);
        if (!a.ok()) continue;
        tcp::Connection* c = a.value();
        for (;;) {
            auto r = tcp::receive(c, buffer, time::kNever);
            if (!r.ok() || r.value() == 0) break; // reset, or the peer's FIN
            if (!send_all(c, buffer.first(r.value()))) break;
        }
        tcp::close(c); // FIN after what is queued (RST if the peer reset)
    }
}

constexpr std::size_t kSourceBytes = 64u << 20;
constinit std::byte g_service_buffer[4][16384];

struct Service {
    std::uint16_t port;
    void (*serve)(tcp::Connection* c, std::span<std::byte> buffer);
    tcp::Listener* listener = nullptr;
};

void discard(tcp::Connection* c, std::span<std::byte> buffer) {
    for (;;) {
        auto r = tcp::receive(c, buffer, time::kNever);
        if (!r.ok() || r.value() == 0) return;
    }
}

void source(tcp::Connection* c, std::span<std::byte> buffer) {
    for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = std::byte(i * 7);
    for (std::size_t sent = 0; sent < kSourceBytes;) {
        std::size_t n = std::min(buffer.size(), kSourceBytes - sent);
        if (!send_all(c, buffer.first(n))) return;
        sent += n;
    }
}

void instret(tcp::Connection* c, std::span<std::byte>) {
    std::uint64_t all = arch::rdinstret();
    std::uint64_t idle_ticks = 0;
    for (unsigned h = 0; h < sched::online_harts(); ++h) idle_ticks += sched::hart_stats(h).idle_ticks;
    std::uint64_t idle_ns = time::to_ns(idle_ticks);
    std::uint64_t values[] = {all, all > idle_ns ? all - idle_ns : 0, idle_ns, time::to_ns(time::now())};
    char line[4 * 21];
    std::size_t at = sizeof line;
    line[--at] = '\n';
    for (std::size_t i = std::size(values); i-- > 0;) {
        std::uint64_t v = values[i];
        do {
            line[--at] = static_cast<char>('0' + v % 10);
            v /= 10;
        } while (v);
        if (i) line[--at] = ' ';
    }
    (void)send_all(c, std::as_bytes(std::span<const char>(line + at, sizeof line - at)));
}

void stats(tcp::Connection* c, std::span<std::byte> buffer) {
    auto ip = ipv4::stats();
    auto t = tcp::stats();
    auto pool = netdev::pool_stats();
    netdev::Counters eth{};
    if (auto* e = netdev::find_interface("eth0")) eth = e->counters();
    std::span<char> text(reinterpret_cast<char*>(buffer.data()), buffer.size());
    base::BufferSink sink(text);
    // Snapshot taken while this connection is open: its own segments and
    // buffers are included (the test accounts for that).
    base::format_to(sink,
                    "stats ip_received={} ip_delivered={} ip_truncated={} ip_bad_version={} ip_bad_header_length={} "
                    "ip_bad_total_length={} ip_bad_checksum={} ip_not_for_us={} ip_fragments={} ip_reassembled={} "
                    "ip_reassembly_timeouts={} ip_reassembly_overlaps={} ip_reassembly_no_room={} ip_ttl_expired={} "
                    "ip_bad_source={} ",
                    ip.received, ip.delivered, ip.truncated, ip.bad_version, ip.bad_header_length,
                    ip.bad_total_length, ip.bad_checksum, ip.not_for_us, ip.fragments_received, ip.reassembled,
                    ip.reassembly_timeouts, ip.reassembly_overlaps, ip.reassembly_no_room, ip.ttl_expired, ip.bad_source);
    base::format_to(sink,
                    "tcp_in={} tcp_out={} tcp_bad_checksum={} tcp_malformed={} tcp_no_connection={} "
                    "tcp_resets_sent={} tcp_resets_received={} tcp_challenge_acks={} tcp_out_of_window={} "
                    "tcp_invalid_acks_suppressed={} tcp_syn_queue_full={} tcp_syn_cookies_sent={} tcp_syn_cookies_accepted={} "
                    "tcp_syn_cookies_rejected={} tcp_syn_per_source={} tcp_table_full={} tcp_retransmits={} "
                    "tcp_timeouts={} tcp_fast_retransmits={} tcp_established={} tcp_in_use={} tcp_time_wait={} "
                    "tcp_ooo_dropped={} tcp_predicted={} tcp_held_back={} tcp_batch_acks={} tcp_acks_merged={} tcp_delayed_acks={} "
                    "tcp_icmp_errors={} tcp_icmp_ignored={} tcp_path_mtu_reductions={} ",
                    t.segments_received, t.segments_sent, t.bad_checksum, t.malformed, t.no_connection,
                    t.resets_sent, t.resets_received, t.challenge_acks, t.out_of_window, t.invalid_acks_suppressed, t.syn_queue_full,
                    t.syn_cookies_sent, t.syn_cookies_accepted, t.syn_cookies_rejected, t.syn_per_source, t.table_full, t.retransmits, t.timeouts, t.fast_retransmits,
                    t.established_now, t.connections_in_use, t.time_wait_now, t.ooo_dropped,
                    t.predicted, t.held_back, t.batch_acks, t.acks_merged, t.delayed_acks, t.icmp_errors, t.icmp_ignored,
                    t.path_mtu_reductions);
    const auto nic = virtio_net::stats();
    base::format_to(sink, "nic_interrupts={} nic_rx={} nic_tx={} nic_rx_kicks={} nic_tx_kicks={} nic_rx_polled={} "
                    "nic_rx_poll_periods={} nic_rx_poll_starved={} ",
                    nic.interrupts, nic.rx_completions, nic.tx_completions, nic.rx_notifications, nic.tx_notifications,
                    nic.rx_polled, nic.rx_poll_periods, nic.rx_poll_starved);
    base::format_to(sink, "pool_free={} pool_total={} pool_failures={} rx_drops={} rx_errors={}\n", pool.free,
                    pool.total, pool.failures, eth.rx_drops, eth.rx_errors);
    (void)send_all(c, std::as_bytes(std::span<const char>(sink.view().data(), sink.view().size())));
}

constinit Service g_services[] = {{9, discard}, {19, source}, {8, instret}, {11, stats}};

void service_thread(void* arg) {
    auto index = reinterpret_cast<std::uintptr_t>(arg);
    Service& s = g_services[index];
    for (;;) {
        auto a = tcp::accept(s.listener, time::kNever);
        if (!a.ok()) continue;
        s.serve(a.value(), std::span<std::byte>(g_service_buffer[index]));
        tcp::close(a.value());
    }
}

} // namespace

int main() {
    netdev::Interface* eth = netdev::find_interface("eth0");
    if (!eth) {
        klog::print("tcpecho: no eth0 (run with a virtio-net device)\n");
        return 1;
    }
    if (auto r = ipv4::configure_static(*eth); !r.ok()) {
        klog::print("tcpecho: configure: {}\n", base::error_name(r.error()));
        return 1;
    }
    auto l = tcp::listen(kPort, 32);
    if (!l.ok()) {
        klog::print("tcpecho: listen: {}\n", base::error_name(l.error()));
        return 1;
    }
    g_listener = l.value();
    for (std::uintptr_t i = 0; i < kWorkers; ++i) {
        sched::ThreadAttributes attributes;
        attributes.name = "echo";
        auto t = sched::spawn(worker, reinterpret_cast<void*>(i), attributes);
        if (!t.ok()) {
            klog::print("tcpecho: spawn: {}\n", base::error_name(t.error()));
            return 1;
        }
        (void)sched::detach(t.value());
    }
    for (std::uintptr_t i = 0; i < std::size(g_services); ++i) {
        auto sl = tcp::listen(g_services[i].port, 4);
        if (!sl.ok()) return 1;
        g_services[i].listener = sl.value();
        sched::ThreadAttributes attributes;
        attributes.name = "service";
        auto t = sched::spawn(service_thread, reinterpret_cast<void*>(i), attributes);
        if (!t.ok()) return 1;
        (void)sched::detach(t.value());
    }
    klog::print("tcpecho: listening on {}:{} with {} workers\n", ipv4::Text(*ipv4::address_of(*eth)).view(), kPort,
                kWorkers);
    // Every 5 s, a status line while something changed since the last one
    // (and the connections' states, for a post-mortem of a stuck test).
    std::uint64_t last = ~0ull;
    for (;;) {
        sched::sleep_for_ns(5'000'000'000ull);
        auto s = tcp::stats();
        auto pool = netdev::pool_stats();
        auto counters = eth->counters();
        if (s.segments_received + s.segments_sent == last) continue;
        last = s.segments_received + s.segments_sent;
        klog::print("tcpecho: segments in {} out {} retransmits {} established {} in use {}; resets sent {} "
                    "received {}; SYNs refused: queue {} per source {} table {}; SYN cookies sent {} accepted {}; "
                    "pool free {} (min {}, failures {}); "
                    "eth0 rx drops {} tx drops {}\n",
                    s.segments_received, s.segments_sent, s.retransmits, s.established_now, s.connections_in_use,
                    s.resets_sent, s.resets_received, s.syn_queue_full, s.syn_per_source, s.table_full,
                    s.syn_cookies_sent, s.syn_cookies_accepted, pool.free,
                    pool.min_free, pool.failures, counters.rx_drops, counters.tx_drops);
        tcp::for_each_connection(
            [](const tcp::ConnectionInfo& i, void*) {
                klog::print("tcpecho:   :{} {} snd_wnd {} rcv_wnd {} cwnd {} rto {} us; queued {} in flight {} "
                            "unread {}; timers rexmt {} persist {}; retransmits {} in {} out {}\n",
                            i.remote_port, tcp::state_name(i.state), i.send_window, i.receive_window, i.cwnd,
                            i.rto_us, i.send_queued, i.in_flight, i.receive_queued, i.retransmit_timer,
                            i.persist_timer, i.retransmits, i.bytes_in, i.bytes_out);
            },
            nullptr);
    }
}
