// The IPv4 stack end to end on eth0 (see Kconfig). Everything a test
// needs is printed as "netstack: ..." lines.
#include <arch/csr.hpp>
#include <base/format.hpp>
#include <cstring>
#include <dhcp/dhcp.hpp>
#include <dns/dns.hpp>
#include <eth-arp/arp.hpp>
#include <icmp/icmp.hpp>
#include <klog/klog.hpp>
#include <netdev/interface.hpp>
#include <sched/sched.hpp>
#include <udp/udp.hpp>

using namespace tessera;

namespace {

time::Ticks in_ms(std::uint64_t ms) { return time::now() + time::from_ns(ms * 1'000'000); }

// The counters a test judges, as one "key=value ..." line.
std::size_t format_stats(std::span<char> out) {
    auto ip = ipv4::stats();
    auto u = udp::stats();
    auto ic = icmp::stats();
    auto arp = eth_arp::stats();
    auto pool = netdev::pool_stats();
    base::BufferSink sink(out);
    base::format_to(sink,
                    "ip_received={} ip_delivered={} ip_bad_checksum={} ip_truncated={} ip_bad_version={} "
                    "ip_not_for_us={} ip_sent={} ip_send_errors={} udp_received={} udp_delivered={} "
                    "udp_bad_checksum={} udp_no_port={} udp_queue_full={} udp_sent={} icmp_echo_replies={} "
                    "icmp_errors_sent={} arp_requests_sent={} arp_replies_received={} arp_failed={} "
                    "pool_free={} pool_total={}",
                    ip.received, ip.delivered, ip.bad_checksum, ip.truncated, ip.bad_version, ip.not_for_us, ip.sent,
                    ip.send_errors, u.received, u.delivered, u.bad_checksum, u.no_port, u.queue_full, u.sent,
                    ic.echo_replies, ic.errors_sent, arp.requests_sent, arp.replies_received, arp.failed, pool.free,
                    pool.total);
    return sink.view().size();
}

// UDP echo on port 7 (RFC 862), plus the STATS/EXIT/BENCH commands.
int echo_server() {
    udp::Socket socket;
    if (auto r = socket.bind(7); !r.ok()) {
        klog::print("netstack: udp bind: {}\n", r.error());
        return 1;
    }
    klog::print("netstack: udp echo ready port 7\n");
    static std::byte buffer[udp::kMaxPayload];
    static char text[600];
    std::uint64_t bench_start = 0, bench_packets = 0;
    for (;;) {
        auto d = socket.receive_from(buffer, time::kNever);
        if (!d.ok()) continue;
        std::string_view payload(reinterpret_cast<const char*>(buffer), d->length);
        if (payload == "STATS") {
            std::size_t n = format_stats(text);
            klog::print("netstack: stats {}\n", std::string_view(text, n));
            (void)socket.send_to(d->source, d->source_port, {reinterpret_cast<const std::byte*>(text), n});
            continue;
        }
        if (payload == "BENCH-BEGIN") {
            bench_start = arch::rdinstret();
            bench_packets = udp::stats().received;
        } else if (payload == "BENCH-END") {
            std::uint64_t n = udp::stats().received - bench_packets - 1;
            klog::print("netstack: bench udp_echo round_trips={} instructions={}\n", n, arch::rdinstret() - bench_start);
        } else if (payload == "EXIT") {
            klog::print("netstack: exit\n");
            return 0;
        }
        (void)socket.send_to(d->source, d->source_port, {buffer, d->length});
    }
}

} // namespace

int main() {
    netdev::Interface* eth0 = netdev::find_interface("eth0");
    if (!eth0) {
        klog::print("netstack: no eth0 (QEMU needs -device virtio-net-device)\n");
        return 1;
    }
    if (auto r = dhcp::start(*eth0); !r.ok()) {
        klog::print("netstack: dhcp: {}\n", r.error());
        return 1;
    }
    auto lease = dhcp::wait_bound(in_ms(30'000));
    if (!lease.ok()) {
        klog::print("netstack: no lease: {}\n", lease.error());
        return 1;
    }
    klog::print("netstack: lease {}/{} gateway {} dns {} server {} lease_s {} t1_s {} t2_s {}\n",
                ipv4::Text(lease->address).view(), lease->prefix_length, ipv4::Text(lease->gateway).view(),
                ipv4::Text(lease->dns).view(), ipv4::Text(lease->server).view(), lease->lease_seconds,
                lease->t1_seconds, lease->t2_seconds);

    for (unsigned seq = 1; seq <= 5; ++seq) {
        auto rtt = icmp::ping(lease->gateway, 56, in_ms(2000));
        if (rtt.ok())
            klog::print("netstack: ping {} seq {} rtt_us {}\n", ipv4::Text(lease->gateway).view(), seq,
                        rtt.value() / 1000);
        else
            klog::print("netstack: ping {} seq {} error {}\n", ipv4::Text(lease->gateway).view(), seq, rtt.error());
    }

    // SLIRP forwards 10.0.2.3 to the host's resolver: without internet
    // access that answers NXDOMAIN, which the resolver must report cleanly.
    const char* name = "example.com";
    auto address = dns::resolve(name, in_ms(10'000));
    auto ds = dns::stats();
    if (address.ok())
        klog::print("netstack: dns {} -> {}\n", name, ipv4::Text(address.value()).view());
    else
        klog::print("netstack: dns {} error {}\n", name, address.error());
    klog::print("netstack: dns stats queries={} answers={} nxdomain={} malformed={} mismatched={} timeouts={}\n",
                ds.queries, ds.answers, ds.nxdomain, ds.malformed, ds.mismatched, ds.timeouts);

    char text[600];
    std::size_t n = format_stats(text);
    klog::print("netstack: stats {}\n", std::string_view(text, n));
    return echo_server();
}
