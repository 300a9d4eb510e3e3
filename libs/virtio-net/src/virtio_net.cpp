// virtio-net (virtio 1.1, section 5.1) over the virtio transport.
#include <atomic>
#include <cstring>
#include <klog/klog.hpp>
#include <netdev/interface.hpp>
#include <time/callout.hpp>
#include <time/time.hpp>
#include <virtio-net/virtio_net.hpp>
#include <virtio/virtio.hpp>

namespace tessera::virtio_net {

namespace {

// Feature bits (5.1.3).
constexpr std::uint64_t kFeatureMtu = 1ull << 3;
constexpr std::uint64_t kFeatureMac = 1ull << 5;
constexpr std::uint64_t kFeatureStatus = 1ull << 16;
// Configuration layout (5.1.4): mac[6] @0, status u16 @6,
// max_virtqueue_pairs u16 @8, mtu u16 @10.
constexpr std::size_t kConfigMac = 0;
constexpr std::size_t kConfigStatus = 6;
constexpr std::size_t kConfigMtu = 10;
constexpr std::uint16_t kStatusLinkUp = 1;
// RFC 791: every IPv4 host must pass 68-byte datagrams unfragmented; the
// device must not offer less (virtio 1.1, 5.1.4.1).
constexpr std::uint16_t kMinMtu = 68;

// struct virtio_net_hdr (5.1.6) as laid out once VERSION_1 is negotiated:
// flags, gso_type, hdr_len, gso_size, csum_start, csum_offset,
// num_buffers — 12 bytes, always present. All zero on transmit: no
// checksum or segmentation offload was negotiated.
constexpr std::size_t kHeader = 12;
constexpr unsigned kRxQueue = 0, kTxQueue = 1;
// Receive buffers start here in the packet storage: after the header is
// pulled, the frame begins at kRxOffset + 12 = 64 and its IP header
// (after 14 bytes of Ethernet) lands on a 4-byte boundary (offset 78 + 2).
constexpr std::size_t kRxOffset = 52 + 2;
constexpr std::size_t kRxBytes = kHeader + netdev::kMaxFrame;
static_assert(kRxOffset + kRxBytes <= netdev::kBufferSize);

void check_tx(void*);
void tx_timer_fired(void*);
void arm_tx_timer();

struct Driver {
    virtio::Device* device = nullptr;
    virtio::Queue rx;
    virtio::Queue tx;
    netdev::Interface iface;
    unsigned rx_target = 0; // buffers we keep posted
    std::atomic<std::uint32_t> rx_posted{0};
    std::atomic<std::uint32_t> tx_in_flight{0};
    std::atomic<std::uint64_t> interrupts{0}, rx_completions{0}, rx_refill_failures{0}, tx_completions{0};
    netdev::Work tx_check{check_tx, nullptr};
    time::Callout tx_timer{tx_timer_fired, nullptr};
    std::atomic<std::uint32_t> tx_timer_armed{0};
};

base::Result<void> transmit(netdev::Interface& iface, netdev::PacketRef packet);
void poll(netdev::Interface& iface);
constexpr netdev::DriverOps kOps = {transmit, poll};
constinit Driver g_driver{nullptr, {}, {}, netdev::Interface("eth0", kOps, &g_driver)};

// Posts fresh buffers until rx_target are with the device; returns how
// many it added (the caller kicks). Any context.
unsigned refill() {
    Driver& d = g_driver;
    unsigned added = 0;
    while (d.rx_posted.load(std::memory_order_relaxed) < d.rx_target) {
        auto packet = netdev::allocate(kRxOffset);
        if (!packet.ok()) {
            d.rx_refill_failures.fetch_add(1, std::memory_order_relaxed);
            d.iface.request_poll(); // the network thread retries when buffers come back
            break;
        }
        netdev::Packet* p = packet.value().release();
        const virtio::Queue::Segment segment{p->storage().data() + kRxOffset, kRxBytes, true};
        if (!d.rx.add({&segment, 1}, p).ok()) {
            netdev::PacketRef::adopt(p).reset();
            break;
        }
        d.rx_posted.fetch_add(1, std::memory_order_relaxed);
        ++added;
    }
    return added;
}

void reap_tx() {
    Driver& d = g_driver;
    void* token;
    std::uint32_t written;
    bool reclaimed = false;
    while (d.tx.pop(token, written)) {
        netdev::PacketRef::adopt(static_cast<netdev::Packet*>(token)).reset();
        d.tx_in_flight.fetch_sub(1, std::memory_order_relaxed);
        d.tx_completions.fetch_add(1, std::memory_order_relaxed);
        reclaimed = true;
    }
    if (reclaimed) {
        d.tx.disable_interrupts_if_idle(); // all collected: back to collecting them in passing
        d.iface.transmit_space(); // wakes whoever held data back while the ring was full
    }
}

void read_link() {
    Driver& d = g_driver;
    bool up = true; // without VIRTIO_NET_F_STATUS the link is assumed up (5.1.4)
    if (d.device->features() & kFeatureStatus)
        up = d.device->config<std::uint16_t>(kConfigStatus) & kStatusLinkUp;
    if (up != d.iface.link_up() && d.iface.index() != ~0u) klog::info("virtio-net: eth0 link {}", up ? "up" : "down");
    d.iface.set_link_up(up);
}

// Interrupt context. Handles every used buffer the device has returned
// (a batch per interrupt: the interrupt was acknowledged before this runs,
// so anything completing meanwhile raises it again).
void on_interrupt(void*, std::uint32_t why) {
    Driver& d = g_driver;
    d.interrupts.fetch_add(1, std::memory_order_relaxed);
    if (why & virtio::kInterruptConfigChange) read_link();
    if (!(why & virtio::kInterruptUsedBuffer)) return;
    reap_tx();
    void* token;
    std::uint32_t written;
    while (d.rx.pop(token, written)) {
        d.rx_posted.fetch_sub(1, std::memory_order_relaxed);
        d.rx_completions.fetch_add(1, std::memory_order_relaxed);
        netdev::PacketRef packet = netdev::PacketRef::adopt(static_cast<netdev::Packet*>(token));
        if (written < kHeader || written > kRxBytes) {
            d.iface.count_rx_error();
            continue; // the buffer goes back to the pool; refill posts a fresh one
        }
        (void)packet->set_window(kRxOffset + kHeader, written - kHeader);
        netdev::receive(d.iface, std::move(packet));
    }
    if (refill()) d.rx.kick();
}

base::Result<void> transmit(netdev::Interface&, netdev::PacketRef packet) {
    Driver& d = g_driver;
    std::byte* header = packet->push(kHeader);
    if (!header) return base::Error::Malformed;
    std::memset(header, 0, kHeader);
    netdev::Packet* p = packet.release();
    const virtio::Queue::Segment segment{p->bytes(), static_cast<std::uint32_t>(p->length()), false};
    auto r = d.tx.add({&segment, 1}, p);
    if (!r.ok()) {
        d.iface.note_transmit_full(); // before the last try: a completion from here on signals room
        // Completions do not interrupt while there is room (see init):
        // now one must, or nothing would tell us when there is.
        d.tx.enable_interrupts();
        reap_tx(); // completions not collected yet
        r = d.tx.add({&segment, 1}, p);
    }
    if (!r.ok()) {
        netdev::PacketRef::adopt(p).reset();
        return r.error();
    }
    d.tx_in_flight.fetch_add(1, std::memory_order_relaxed);
    d.tx.kick();
    arm_tx_timer();
    return {};
}

// Completions not collected in passing are collected kTxCheckNs after a
// transmit at the latest (see init): a callout, armed once at a time.
constexpr std::uint64_t kTxCheckNs = 2'000'000;

void arm_tx_timer() {
    Driver& d = g_driver;
    if (d.tx_timer_armed.exchange(1, std::memory_order_acq_rel)) return;
    if (!d.tx_timer.start_at(time::now() + time::from_ns(kTxCheckNs)).ok()) {
        d.tx_timer_armed.store(0, std::memory_order_release);
        (void)d.tx.enable_interrupts(); // no timer: fall back to the interrupt
    }
}

// Interrupt context.
void tx_timer_fired(void*) {
    g_driver.tx_timer_armed.store(0, std::memory_order_release);
    netdev::schedule(g_driver.tx_check);
}

// Network thread (the timer's work, and every poll after a batch).
void check_tx(void*) {
    reap_tx();
    if (g_driver.tx_in_flight.load(std::memory_order_relaxed)) arm_tx_timer();
}

// Network thread, after each batch: collect transmit completions, top the
// RX ring up after the pool ran dry.
void poll(netdev::Interface&) {
    check_tx(nullptr);
    if (refill()) g_driver.rx.kick();
}

} // namespace

netdev::Interface* interface() { return g_driver.device ? &g_driver.iface : nullptr; }

Stats stats() {
    Driver& d = g_driver;
    auto r = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    return {r(d.interrupts), r(d.rx_completions), r(d.rx_refill_failures), r(d.tx_completions),
            d.rx_posted.load(std::memory_order_relaxed), d.rx_target, d.tx_in_flight.load(std::memory_order_relaxed),
            d.rx.stats().notifications, d.tx.stats().notifications, d.device ? d.device->features() : 0};
}

// Init step virtio_net.probe (virtio 1.1, 3.1.1 and 5.1.5).
base::Result<void> init_probe() {
    Driver& d = g_driver;
    auto claimed = virtio::Device::claim(virtio::DeviceType::Net);
    if (!claimed.ok()) {
        klog::info("virtio-net: no device ({})", claimed.error());
        return {}; // a machine without a NIC is fine
    }
    virtio::Device& dev = *claimed.value();
    auto fail = [&](std::string_view what, base::Error e) -> base::Result<void> {
        klog::error("virtio-net: {}: {}", what, e);
        dev.fail();
        return {}; // the rest of the system boots without eth0
    };
    auto features = dev.negotiate(kFeatureMac | kFeatureStatus | kFeatureMtu);
    if (!features.ok()) return fail("feature negotiation", features.error());
    std::uint64_t f = features.value();
    d.device = &dev;

    netdev::MacAddress mac{{0x02, 0x54, 0x65, 0x73, 0x73, 0x01}}; // locally administered default
    std::uint16_t mtu = 1500;
    dev.config_stable([&] {
        if (f & kFeatureMac)
            for (unsigned i = 0; i < 6; ++i) mac.bytes[i] = dev.config<std::uint8_t>(kConfigMac + i);
        if (f & kFeatureMtu) mtu = dev.config<std::uint16_t>(kConfigMtu);
    });
    // A device MTU below the IPv4 minimum breaks the spec and could carry
    // no IPv4 header plus options: refuse the device (FAILED, no eth0)
    // rather than register an interface the stack cannot use.
    if (mtu < kMinMtu) {
        klog::error("virtio-net: device MTU {} is below the IPv4 minimum {}: device refused, no eth0", mtu, kMinMtu);
        d.device = nullptr;
        dev.fail();
        return {};
    }
    // Our buffers hold a 1514-byte frame: a larger device MTU is capped.
    if (mtu > netdev::kMaxFrame - netdev::kEthernetHeader) mtu = netdev::kMaxFrame - netdev::kEthernetHeader;
    d.iface.set_mac(mac);
    d.iface.set_mtu(mtu);

    if (auto r = dev.setup_queue(d.rx, kRxQueue, CONFIG_VIRTIO_NET_RX_BUFFERS); !r.ok()) {
        d.device = nullptr;
        return fail("receive queue", r.error());
    }
    if (auto r = dev.setup_queue(d.tx, kTxQueue, CONFIG_VIRTIO_NET_TX_SLOTS); !r.ok()) {
        d.device = nullptr;
        return fail("transmit queue", r.error());
    }
    d.rx_target = d.rx.size();
    // Transmit completions raise no interrupt: they are collected in
    // passing (every interrupt, every poll after a network-thread batch),
    // and at the latest kTxCheckNs after a transmit by a callout, since
    // an interrupt costs four MMIO accesses under QEMU's big lock (a bulk
    // receive through SLIRP took 1,310 interrupts per 16 MiB, now about
    // 600). A full ring asks for the interrupt (transmit()): that one is
    // what says there is room.
    d.tx.disable_interrupts();
    if (auto r = dev.attach_irq(on_interrupt, &d); !r.ok()) {
        d.device = nullptr;
        return fail("interrupt", r.error());
    }
    // 3.1.1: buffers may be added before DRIVER_OK; the device uses them
    // once it is live.
    refill();
    dev.driver_ok();
    read_link();
    d.rx.kick();
    if (auto r = netdev::register_interface(d.iface); !r.ok()) return fail("register eth0", r.error());
    klog::info("virtio-net: eth0 {:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} mtu {} link {} (rx {} tx {} slots, features {:#x})",
               mac.bytes[0], mac.bytes[1], mac.bytes[2], mac.bytes[3], mac.bytes[4], mac.bytes[5], mtu,
               d.iface.link_up() ? "up" : "down", d.rx.size(), d.tx.size(), f);
    return {};
}

} // namespace tessera::virtio_net
