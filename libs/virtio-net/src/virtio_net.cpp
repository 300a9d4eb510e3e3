// virtio-net (virtio 1.1, section 5.1) over the virtio transport.
#include <atomic>
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <base/endian.hpp>
#include <klog/klog.hpp>
#include <netdev/interface.hpp>
#include <sched/sched.hpp>
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
// plat routes every interrupt source to the boot hart (plat/irq.hpp).
constexpr unsigned kInterruptHart = 0;
// Receive buffers start here in the packet storage: after the header is
// pulled, the frame begins at kRxOffset + 12 = 64 and its IP header
// (after 14 bytes of Ethernet) lands on a 4-byte boundary (offset 78 + 2).
constexpr std::size_t kRxOffset = 52 + 2;
constexpr std::size_t kRxBytes = kHeader + netdev::kMaxFrame;
static_assert(kRxOffset + kRxBytes <= netdev::kBufferSize);

void check_tx(void*);
void tx_timer_fired(void*);
void arm_tx_timer();
void rx_watchdog_fired(void*);

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
    // Receive polling. Only the hart that takes the device interrupt
    // polls, with interrupts off while it pops and queues, so the handler
    // and the poll never pop at once and frames keep their order.
    std::atomic<bool> rx_polling{false};
    bool rx_poll_registered = false;
    std::atomic<std::uint32_t> rx_poll_window_us{CONFIG_VIRTIO_NET_RX_POLL_US};
    time::Ticks rx_last_frame = 0; // that hart only
    std::uint64_t rx_poll_rounds = 0, rx_poll_rounds_seen = 0; // that hart only
    time::Callout rx_watchdog{rx_watchdog_fired, nullptr};
    std::atomic<std::uint64_t> rx_polled{0}, rx_poll_periods{0}, rx_poll_starved{0};
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

// Frames handed to netdev at a time: one wake-up of the network thread
// per batch rather than per frame (from the idle poll, a wake-up switches
// to it at once).
constexpr unsigned kRxBatch = 32;

struct Drain {
    // No more than netdev's queue has room for: the rest stay with the
    // device, which holds back what follows, so a flood is slowed at the
    // source instead of dropped after the work of taking it. Only when
    // polling will come back for them.
    bool bounded;
    bool polled; // no interrupt signalled these (counted in rx_polled)
};

// Pops used receive buffers, re-posts fresh ones and hands the frames to
// netdev. The interrupt hart with interrupts off (the handler, the idle
// poll, the watchdog).
void drain_rx(Drain how) {
    Driver& d = g_driver;
    reap_tx();
    unsigned room = how.bounded ? netdev::receive_room() : ~0u;
    netdev::PacketRef batch[kRxBatch];
    for (bool more = true; more && room;) {
        unsigned count = 0;
        void* token;
        std::uint32_t written;
        while (count < kRxBatch && count < room && (more = d.rx.pop(token, written))) {
            d.rx_posted.fetch_sub(1, std::memory_order_relaxed);
            d.rx_completions.fetch_add(1, std::memory_order_relaxed);
            if (how.polled) d.rx_polled.fetch_add(1, std::memory_order_relaxed); // before the hand-off too
            netdev::PacketRef packet = netdev::PacketRef::adopt(static_cast<netdev::Packet*>(token));
            if (written < kHeader || written > kRxBytes) {
                d.iface.count_rx_error();
                continue; // the buffer goes back to the pool; refill posts a fresh one
            }
            (void)packet->set_window(kRxOffset + kHeader, written - kHeader);
            batch[count++] = std::move(packet);
        }
        if (refill()) d.rx.kick(); // before the hand-off, which may switch away
        netdev::receive(d.iface, std::span(batch, count));
        room -= count;
    }
}

time::Ticks rx_poll_window() {
    return time::from_us(g_driver.rx_poll_window_us.load(std::memory_order_relaxed));
}

// The poll runs only when the hart has nothing else to do. A hart kept
// busy by threads (a CPU-bound one below the network thread's priority,
// say) must still see frames: the watchdog looks every kWatchdogNs while
// the poll has not run, takes what is waiting, and turns interrupts back
// on once nothing is.
constexpr std::uint64_t kWatchdogNs = 1'000'000;

bool polling_enabled() {
    return g_driver.rx_poll_registered && g_driver.rx_poll_window_us.load(std::memory_order_relaxed);
}

// Interrupts off, the idle poll (and the watchdog) watching the ring.
// False if the watchdog could not be armed: interrupts stay on.
bool start_polling(time::Ticks now) {
    Driver& d = g_driver;
    if (!d.rx_watchdog.start_at(now + time::from_ns(kWatchdogNs)).ok()) return false;
    d.rx.disable_interrupts();
    d.rx_last_frame = now;
    d.rx_poll_rounds_seen = d.rx_poll_rounds;
    d.rx_polling.store(true, std::memory_order_relaxed);
    d.rx_poll_periods.fetch_add(1, std::memory_order_relaxed);
    return true;
}

// Interrupts back on, unless frames came in meanwhile (no interrupt will
// come for those): then they are taken and polling goes on.
void stop_polling() {
    Driver& d = g_driver;
    d.rx_watchdog.cancel();
    d.rx_polling.store(false, std::memory_order_relaxed);
    if (!d.rx.enable_interrupts()) return;
    // No interrupt will come for these (they count as polled). If polling
    // cannot go on, interrupts alone follow: take them all.
    const bool polls = polling_enabled() && start_polling(time::now());
    drain_rx({.bounded = polls, .polled = true});
}

// Interrupt context. Handles the used buffers the device has returned (a
// batch per interrupt: the interrupt was acknowledged before this runs,
// so anything completing meanwhile raises it again). Frames mean traffic:
// the idle poll takes over until it goes quiet.
void on_interrupt(void*, std::uint32_t why) {
    Driver& d = g_driver;
    d.interrupts.fetch_add(1, std::memory_order_relaxed);
    if (why & virtio::kInterruptConfigChange) read_link();
    if (!(why & virtio::kInterruptUsedBuffer)) return;
    if (d.rx_polling.load(std::memory_order_relaxed)) {
        drain_rx({.bounded = true, .polled = false}); // raised before polling turned interrupts off
        return;
    }
    if (!d.rx.used_waiting()) {
        reap_tx();
        return;
    }
    // Bounded only if polling will come back for what is left.
    const bool polls = polling_enabled() && start_polling(time::now());
    drain_rx({.bounded = polls, .polled = false});
}

// Interrupt context, on the interrupt hart (which armed it).
void rx_watchdog_fired(void*) {
    Driver& d = g_driver;
    if (!d.rx_polling.load(std::memory_order_relaxed)) return;
    if (d.rx_poll_rounds == d.rx_poll_rounds_seen) { // the hart had no idle moment
        d.rx_poll_starved.fetch_add(1, std::memory_order_relaxed);
        if (!d.rx.used_waiting() || !polling_enabled()) {
            stop_polling();
            return;
        }
        drain_rx({.bounded = true, .polled = true});
    }
    d.rx_poll_rounds_seen = d.rx_poll_rounds;
    if (!d.rx_watchdog.start_at(time::now() + time::from_ns(kWatchdogNs)).ok()) stop_polling();
}

// Idle poll (sched::add_idle_poll): while polling, take what the device
// returned; after a quiet window, interrupts back on. True while polling.
bool poll_rx_while_idle() {
    Driver& d = g_driver;
    if (!d.rx_polling.load(std::memory_order_relaxed) || arch::this_hart().index != kInterruptHart) return false;
    arch::IrqGuard guard; // the device interrupt and the watchdog are this hart's too
    if (!d.rx_polling.load(std::memory_order_relaxed)) return false; // the watchdog ended it
    ++d.rx_poll_rounds;
    if (d.rx.used_waiting()) {
        drain_rx({.bounded = true, .polled = true});
        d.rx_last_frame = time::now();
        return true;
    }
    if (polling_enabled() && time::now() - d.rx_last_frame < rx_poll_window()) return true;
    stop_polling();
    return d.rx_polling.load(std::memory_order_relaxed);
}

base::Result<void> transmit(netdev::Interface&, netdev::PacketRef packet) {
    Driver& d = g_driver;
    std::byte* header = packet->push(kHeader);
    if (!header) return base::Error::Malformed;
    // No offloads: an all-zero header. Stored inline (memset would be a
    // call, once per frame).
    static_assert(kHeader % 4 == 0);
    for (std::size_t i = 0; i < kHeader; i += 4) base::store_be32(header + i, 0);
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
    // Sequentially consistent, as the timer's clear and check_tx's load:
    // either this sees the timer disarmed and arms it, or check_tx after
    // the timer sees this frame in flight and re-arms.
    d.tx_in_flight.fetch_add(1, std::memory_order_seq_cst);
    d.tx.kick();
    if (!d.tx_timer_armed.load(std::memory_order_seq_cst)) arm_tx_timer(); // usually armed already: no call
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
    g_driver.tx_timer_armed.store(0, std::memory_order_seq_cst);
    netdev::schedule(g_driver.tx_check);
}

// Network thread (the timer's work, and every poll after a batch).
void check_tx(void*) {
    reap_tx();
    if (g_driver.tx_in_flight.load(std::memory_order_seq_cst)) arm_tx_timer();
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
            d.rx.stats().notifications, d.tx.stats().notifications, d.device ? d.device->features() : 0,
            r(d.rx_polled), r(d.rx_poll_periods), r(d.rx_poll_starved), d.rx_poll_window_us.load(std::memory_order_relaxed),
            d.rx_polling.load(std::memory_order_relaxed)};
}

void set_rx_poll_window_us(std::uint32_t us) { g_driver.rx_poll_window_us.store(us, std::memory_order_relaxed); }

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
    // Without a free idle-poll slot the driver keeps to interrupts.
    if (auto r = sched::add_idle_poll(poll_rx_while_idle); r.ok())
        d.rx_poll_registered = true;
    else
        klog::warn("virtio-net: no receive polling: {}", r.error());
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
