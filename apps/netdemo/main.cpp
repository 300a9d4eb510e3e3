// Reflects frames of EtherType 0x88B5 back to their sender (MACs swapped),
// in the network thread, straight from the receive handler. A few payloads
// are commands instead (see Kconfig). Everything a test needs to judge the
// driver path is printed on the console as "netdemo: ..." lines.
#include <arch/csr.hpp>
#include <atomic>
#include <cstring>
#include <klog/klog.hpp>
#include <netdev/interface.hpp>
#include <plat/machine.hpp>
#include <sched/sched.hpp>
#include <string_view>
#include <virtio-net/virtio_net.hpp>

using namespace tessera;

namespace {

constexpr std::uint16_t kEthertype = 0x88b5;

struct Bench {
    bool running = false;
    std::uint64_t start_instret = 0;
    std::uint64_t start_reflected = 0;
    std::uint64_t start_interrupts = 0;
    std::uint64_t start_switches = 0;
    std::uint64_t start_idle_ticks = 0;
};

// Under -icount shift=0 rdinstret is QEMU's virtual clock in ns, and that
// clock also runs while the hart sleeps in wfi: idle time would count as
// instructions. The scheduler's idle time (time ticks) is taken out, at
// 1e9 / timebase instructions per tick.
std::uint64_t idle_ticks() {
    std::uint64_t t = 0;
    for (unsigned h = 0; h < sched::online_harts(); ++h) t += sched::hart_stats(h).idle_ticks;
    return t;
}

// Touched only in the network thread (the handler), except g_exit.
constinit std::uint64_t g_reflected = 0;
constinit std::uint64_t g_reflect_failures = 0;
constinit Bench g_bench;
constinit std::atomic<int> g_exit{-1};
constinit sched::ThreadHandle g_main;

void print_stats(netdev::Interface& iface) {
    auto c = iface.counters();
    auto pool = netdev::pool_stats();
    auto stack = netdev::stats();
    auto driver = virtio_net::stats();
    klog::print("netdemo: stats rx_packets={} rx_bytes={} rx_drops={} rx_errors={} tx_packets={} tx_bytes={} "
                "tx_drops={} tx_errors={} reflected={} reflect_failures={} runts={} unknown_ethertype={} "
                "queue_full={} pool_free={} pool_total={} pool_min_free={} alloc_failures={} rx_posted={} "
                "rx_ring={} tx_in_flight={} interrupts={}\n",
                c.rx_packets, c.rx_bytes, c.rx_drops, c.rx_errors, c.tx_packets, c.tx_bytes, c.tx_drops,
                c.tx_errors, g_reflected, g_reflect_failures, stack.runts, stack.unknown_ethertype,
                stack.queue_full, pool.free, pool.total, pool.min_free, pool.failures, driver.rx_posted,
                driver.rx_ring, driver.tx_in_flight, driver.interrupts);
}

bool command(netdev::Interface& iface, netdev::PacketRef& packet) {
    auto payload = packet->data();
    std::string_view text(reinterpret_cast<const char*>(payload.data()), payload.size() < 16 ? payload.size() : 16);
    auto is = [&](std::string_view word) { return text.substr(0, word.size()) == word; };
    if (is("STATS")) {
        packet.reset(); // not held while the pool is counted
        print_stats(iface);
    } else if (is("BENCH-BEGIN")) {
        packet.reset();
        g_bench = {true, arch::rdinstret(), g_reflected, virtio_net::stats().interrupts, sched::stats().switches,
                   idle_ticks()};
    } else if (is("BENCH-END")) {
        std::uint64_t instructions = arch::rdinstret() - g_bench.start_instret;
        std::uint64_t idle = (idle_ticks() - g_bench.start_idle_ticks) * (1'000'000'000 / plat::machine().timebase_hz);
        std::uint64_t frames = g_reflected - g_bench.start_reflected;
        std::uint64_t busy = instructions > idle ? instructions - idle : 0;
        packet.reset();
        g_bench.running = false;
        klog::print("netdemo: bench frames={} instructions={} idle={} per_frame={} interrupts={} switches={}\n",
                    frames, instructions, idle, frames ? busy / frames : 0,
                    virtio_net::stats().interrupts - g_bench.start_interrupts,
                    sched::stats().switches - g_bench.start_switches);
    } else if (is("EXIT")) {
        packet.reset();
        g_exit.store(0, std::memory_order_release);
        (void)sched::unpark(g_main);
    } else {
        return false;
    }
    return true;
}

void reflect(netdev::Interface& iface, netdev::PacketRef packet, void*) {
    if (command(iface, packet)) return;
    // The dispatcher pulled the Ethernet header; it is still in front of
    // the payload, so put it back and swap the addresses in place.
    auto* header = reinterpret_cast<netdev::EthernetHeader*>(packet->push(netdev::kEthernetHeader));
    if (!header) {
        ++g_reflect_failures;
        return;
    }
    std::uint8_t destination[6];
    std::memcpy(destination, header->source, 6);
    auto mac = iface.mac();
    std::memcpy(header->source, mac.bytes.data(), 6);
    std::memcpy(header->destination, destination, 6);
    if (iface.transmit(std::move(packet)).ok()) ++g_reflected; else ++g_reflect_failures;
}

} // namespace

int main() {
    g_main = sched::self();
    netdev::Interface* iface = virtio_net::interface();
    if (!iface) {
        klog::print("netdemo: no network interface (QEMU needs -device virtio-net-device and "
                    "-global virtio-mmio.force-legacy=false)\n");
        return 1;
    }
    if (auto r = netdev::register_ethertype(kEthertype, reflect, nullptr); !r.ok()) {
        klog::print("netdemo: cannot register EtherType {:#x}: {}\n", kEthertype, r.error());
        return 1;
    }
    auto mac = iface->mac();
    klog::print("netdemo: {} {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} mtu {} link {}\n", iface->name(), mac.bytes[0],
                mac.bytes[1], mac.bytes[2], mac.bytes[3], mac.bytes[4], mac.bytes[5], iface->mtu(),
                iface->link_up() ? "up" : "down");
    auto pool = netdev::pool_stats();
    klog::print("netdemo: ready pool_free={} pool_total={}\n", pool.free, pool.total);
    while (g_exit.load(std::memory_order_acquire) < 0) sched::park();
    return g_exit.load();
}
