#include <arch/cpu.hpp>
#include <cstring>
#include <ktest/ktest.hpp>
#include <netdev/interface.hpp>
#include <netdev/pair.hpp>
#include <sched/sched.hpp>
#include <time/time.hpp>
#include <virtio-net/virtio_net.hpp>

using namespace tessera;
using base::Error;

// These run against QEMU's virtio-net in test_ktest.py's "virtio" variant
// (eth0 given mac=52:54:00:12:34:56, SLIRP behind it) and skip elsewhere.

namespace {
netdev::Interface* eth0(ktest::Context& ktest_context) {
    netdev::Interface* i = virtio_net::interface();
    if (!i) ktest_context.skip("no virtio-net device (run with the virtio variant)");
    return i;
}

// Waits (sleeping) until cond() or `ms` of guest time passed.
template <typename F>
bool wait_for(F cond, unsigned ms = 1000) {
    time::Ticks deadline = time::now() + time::from_us(ms * 1000ull);
    while (!cond()) {
        if (time::now() >= deadline) return false;
        sched::sleep_for_ns(100'000);
    }
    return true;
}
} // namespace

KTEST(virtio_net, eth0_takes_mac_mtu_and_link_from_the_device) {
    netdev::Interface* i = eth0(ktest_context);
    if (!i) return;
    EXPECT_TRUE(netdev::find_interface("eth0") == i);
    EXPECT_TRUE(i->mac() == (netdev::MacAddress{{0x52, 0x54, 0x00, 0x12, 0x34, 0x56}}));
    EXPECT_EQ(i->mtu(), 1500u);
    EXPECT_TRUE(i->link_up());
    auto s = virtio_net::stats();
    EXPECT_TRUE(s.features & (1ull << 32)); // VERSION_1
    EXPECT_TRUE(s.features & (1ull << 5));  // MAC
    EXPECT_GT(s.rx_ring, 0u);
    EXPECT_EQ(s.rx_posted, s.rx_ring); // the receive ring is stocked
}

KTEST(virtio_net, transmitted_buffers_return_to_the_pool) {
    netdev::Interface* i = eth0(ktest_context);
    if (!i) return;
    ASSERT_TRUE(wait_for([] { return virtio_net::stats().tx_in_flight == 0; }));
    auto pool = netdev::pool_stats();
    auto before = i->counters();
    auto driver = virtio_net::stats();
    for (unsigned n = 0; n < 200; ++n) {
        auto p = netdev::allocate();
        ASSERT_OK(p);
        std::byte* payload = p.value()->put(100);
        std::memset(payload, static_cast<int>(n), 100);
        // Local experimental EtherType, broadcast: SLIRP ignores it.
        auto r = i->send_frame(std::move(p.value()), netdev::MacAddress::broadcast(), 0x88b5);
        if (!r.ok()) EXPECT_ERROR(r, Error::Overloaded); // a full ring drops, counted
    }
    EXPECT_TRUE(wait_for([&] { return netdev::pool_stats().free == pool.free; }));
    auto after = i->counters();
    EXPECT_EQ((after.tx_packets - before.tx_packets) + (after.tx_drops - before.tx_drops), 200u);
    EXPECT_EQ(after.tx_bytes - before.tx_bytes, (after.tx_packets - before.tx_packets) * 114);
    EXPECT_EQ(virtio_net::stats().tx_completions - driver.tx_completions, after.tx_packets - before.tx_packets);
    EXPECT_EQ(virtio_net::stats().tx_in_flight, 0u);
}

KTEST(virtio_net, transmit_completions_are_collected_without_an_interrupt_each) {
    // Twenty frames, one at a time, the ring never full: their buffers come
    // back (collected by the driver's check a few ms after a transmit)
    // without the device interrupting for each completion.
    netdev::Interface* i = eth0(ktest_context);
    if (!i) return;
    ASSERT_TRUE(wait_for([] { return virtio_net::stats().tx_in_flight == 0; }));
    auto pool = netdev::pool_stats();
    auto before = virtio_net::stats();
    auto sent_before = i->counters().tx_packets;
    for (unsigned n = 0; n < 20; ++n) {
        auto p = netdev::allocate();
        ASSERT_OK(p);
        std::memset(p.value()->put(60), static_cast<int>(n), 60);
        ASSERT_OK(i->send_frame(std::move(p.value()), netdev::MacAddress::broadcast(), 0x88b5));
        sched::sleep_for_ns(1'000'000); // the device completes it meanwhile
    }
    EXPECT_TRUE(wait_for([&] { return netdev::pool_stats().free == pool.free; }));
    auto after = virtio_net::stats();
    // Every frame sent meanwhile (ours, and any the stack sent) came back.
    EXPECT_EQ(after.tx_completions - before.tx_completions, i->counters().tx_packets - sent_before);
    EXPECT_GE(i->counters().tx_packets - sent_before, 20u);
    EXPECT_EQ(after.tx_in_flight, 0u);
    EXPECT_LE(after.interrupts - before.interrupts, 2u); // SLIRP may send something of its own
}

namespace {
struct ArpReply {
    unsigned count = 0;
    std::uint8_t sender_ip[4] = {};
};
void on_arp(netdev::Interface&, netdev::PacketRef packet, void* context) {
    auto& reply = *static_cast<ArpReply*>(context);
    const std::byte* arp = packet->bytes();
    // RFC 826: opcode 2 (reply) at offset 6, sender protocol address at 14.
    if (packet->length() >= 28 && arp[7] == std::byte{2}) {
        std::memcpy(reply.sender_ip, arp + 14, 4);
        ++reply.count;
    }
}

// who-has 10.0.2.2 tell 10.0.2.15 (RFC 826, Ethernet/IPv4): SLIRP's
// gateway answers.
base::Result<void> ask_the_gateway(netdev::Interface& i) {
    const std::uint8_t m[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    const std::uint8_t request[28] = {0, 1, 8, 0, 6, 4, 0, 1, m[0], m[1], m[2], m[3], m[4], m[5], 10, 0, 2, 15,
                                      0, 0, 0, 0, 0, 0, 10, 0, 2, 2};
    auto p = netdev::allocate();
    if (!p.ok()) return p.error();
    std::memcpy(p.value()->put(sizeof(request)), request, sizeof(request));
    return i.send_frame(std::move(p.value()), netdev::MacAddress::broadcast(), 0x0806);
}

// Restores the configured poll window however the case ends.
struct PollWindow {
    explicit PollWindow(std::uint32_t us) { virtio_net::set_rx_poll_window_us(us); }
    ~PollWindow() { virtio_net::set_rx_poll_window_us(CONFIG_VIRTIO_NET_RX_POLL_US); }
};
} // namespace

KTEST(virtio_net, receives_the_slirp_gateways_arp_reply) {
    netdev::Interface* i = eth0(ktest_context);
    if (!i) return;
    static ArpReply reply;
    reply = {};
    if (auto r = netdev::register_ethertype(0x0806, on_arp, &reply); !r.ok()) {
        ktest_context.skip("ARP is owned by the stack in this image");
        return;
    }
    auto before = i->counters();
    ASSERT_OK(ask_the_gateway(*i));
    EXPECT_TRUE(wait_for([] { return reply.count > 0; }));
    EXPECT_EQ(reply.sender_ip[3], 2u);
    EXPECT_GT(i->counters().rx_packets, before.rx_packets);
    EXPECT_GT(virtio_net::stats().rx_completions, 0u);
    netdev::unregister_ethertype(0x0806);
    // The ring was topped up after the receive.
    EXPECT_TRUE(wait_for([] { return virtio_net::stats().rx_posted == virtio_net::stats().rx_ring; }));
}

namespace {
// Asks the gateway and waits for one more frame: the reply (whoever takes
// ARP in this image, the frame passed through the driver).
bool exchange_with_the_gateway(netdev::Interface& i) {
    const std::uint64_t seen = virtio_net::stats().rx_completions;
    return ask_the_gateway(i).ok() && wait_for([&] { return virtio_net::stats().rx_completions > seen; });
}
} // namespace

KTEST(virtio_net, frames_are_polled_while_traffic_lasts_then_interrupt_again) {
    netdev::Interface* i = eth0(ktest_context);
    if (!i) return;
    PollWindow window(2'000'000); // 2 s: polling cannot end by itself during the exchanges
    virtio_net::Stats polling{}, polled{};
    // Without -icount the guest's clock is the host's: a loaded host that
    // stalls the vCPU thread for over 1 ms makes the watchdog find no
    // idle moment and end the period, as designed (rx_poll_starved). Only
    // then is the attempt repeated.
    for (unsigned attempt = 0; attempt < 5; ++attempt) {
        const std::uint64_t starved = virtio_net::stats().rx_poll_starved;
        ASSERT_TRUE(exchange_with_the_gateway(*i));
        polling = virtio_net::stats();
        for (unsigned n = 0; n < 3; ++n) ASSERT_TRUE(exchange_with_the_gateway(*i)); // sleeps: the hart idles, polls
        polled = virtio_net::stats();
        if (polled.rx_poll_starved == starved) break;
    }
    EXPECT_TRUE(polling.rx_polling); // the reply (by interrupt, or polled) turned the interrupts off
    EXPECT_GE(polled.rx_polled - polling.rx_polled, 3u);
    EXPECT_EQ(polled.interrupts, polling.interrupts); // no device interrupt meanwhile
    EXPECT_TRUE(polled.rx_polling);
    // Window 0: polling stops at the hart's next idle moment; the next
    // reply comes by interrupt, and polling does not start again.
    virtio_net::set_rx_poll_window_us(0);
    ASSERT_TRUE(wait_for([] { return !virtio_net::stats().rx_polling; }));
    auto stopped = virtio_net::stats();
    ASSERT_TRUE(exchange_with_the_gateway(*i));
    auto after = virtio_net::stats();
    EXPECT_GT(after.interrupts, stopped.interrupts);
    EXPECT_EQ(after.rx_polled, stopped.rx_polled);
    EXPECT_FALSE(after.rx_polling);
    EXPECT_EQ(after.rx_poll_periods, stopped.rx_poll_periods);
}

KTEST(virtio_net, a_hart_kept_busy_still_receives_by_the_watchdog) {
    // This thread spins, below the network thread's priority, on the hart
    // that polls: the hart never idles and the poll never runs. The
    // watchdog must take the reply.
    netdev::Interface* i = eth0(ktest_context);
    if (!i) return;
    PollWindow window(2'000'000);
    ASSERT_TRUE(exchange_with_the_gateway(*i));
    ASSERT_TRUE(virtio_net::stats().rx_polling);
    auto before = virtio_net::stats();
    ASSERT_OK(ask_the_gateway(*i));
    const time::Ticks give_up = time::now() + time::from_us(2'000'000);
    while (virtio_net::stats().rx_completions == before.rx_completions && time::now() < give_up)
        arch::pause(); // busy: no idle moment
    auto after = virtio_net::stats();
    EXPECT_GT(after.rx_completions, before.rx_completions);
    EXPECT_GT(after.rx_poll_starved, before.rx_poll_starved);
    EXPECT_EQ(after.interrupts, before.interrupts); // found by the watchdog, not signalled
    EXPECT_GT(after.rx_polled, before.rx_polled);
}

KTEST(virtio_net, frames_wait_with_the_device_while_the_receive_queue_is_full) {
    // netdev's queue is filled (through a pair) while this thread holds
    // the network thread off and keeps the hart busy: the watchdog finds
    // the gateway's reply but no room, and must leave it in the ring
    // rather than pop it only to have it dropped. Once the network thread
    // has emptied the queue, the reply comes through.
    netdev::Interface* i = eth0(ktest_context);
    if (!i) return;
    if (sched::online_harts() != 1) {
        ktest_context.skip("holds the network thread off on the only hart");
        return;
    }
    if (netdev::pool_stats().free < CONFIG_NETDEV_RX_QUEUE + 16) {
        ktest_context.skip("the packet pool is smaller than the queue");
        return;
    }
    PollWindow window(2'000'000);
    ASSERT_TRUE(exchange_with_the_gateway(*i));
    netdev::Pair pair("tv0", "tv1");
    ASSERT_OK(pair.attach());
    const auto dropped = netdev::stats().queue_full;
    const auto before = virtio_net::stats();
    ASSERT_OK(sched::set_priority(sched::self(), CONFIG_NETDEV_THREAD_PRIORITY + 1));
    while (netdev::receive_room()) {
        auto p = netdev::allocate();
        ASSERT_OK(p);
        std::memset(p.value()->put(60), 0, 60); // no EtherType anyone handles
        netdev::receive(pair.b(), std::move(p.value()));
    }
    ASSERT_OK(ask_the_gateway(*i));
    const time::Ticks until = time::now() + time::from_us(5'000); // five watchdog periods
    while (time::now() < until) arch::pause();
    const auto held = virtio_net::stats();
    ASSERT_OK(sched::set_priority(sched::self(), CONFIG_SCHED_MAIN_PRIORITY));
    EXPECT_EQ(held.rx_completions, before.rx_completions); // left with the device
    EXPECT_GT(held.rx_poll_starved, before.rx_poll_starved);
    EXPECT_TRUE(wait_for([&] { return virtio_net::stats().rx_completions > before.rx_completions; }));
    EXPECT_EQ(netdev::stats().queue_full, dropped);
}
