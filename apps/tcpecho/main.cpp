// tcpecho: RFC 862 echo over TCP port 7, one worker thread per connection
// from a fixed pool (kWorkers). The host-side test (test/test_tcp.py)
// connects through QEMU's SLIRP hostfwd.
#include <klog/klog.hpp>
#include <netdev/interface.hpp>
#include <sched/sched.hpp>
#include <tcp/tcp.hpp>

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
        klog::print("tcpecho: segments in {} out {} retransmits {} established {} in use {}; pool free {} (min {}, "
                    "failures {}); eth0 rx drops {} tx drops {}\n",
                    s.segments_received, s.segments_sent, s.retransmits, s.established_now, s.connections_in_use,
                    pool.free, pool.min_free, pool.failures, counters.rx_drops, counters.tx_drops);
        tcp::for_each_connection(
            [](const tcp::ConnectionInfo& i, void*) {
                klog::print("tcpecho:   :{} {} snd_wnd {} rcv_wnd {} cwnd {} rto {} us\n", i.remote_port,
                            tcp::state_name(i.state), i.send_window, i.receive_window, i.cwnd, i.rto_us);
            },
            nullptr);
    }
}
