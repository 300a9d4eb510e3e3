#include <cstring>
#include <ktest/ktest.hpp>
#include <netdev/interface.hpp>
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
    // who-has 10.0.2.2 tell 10.0.2.15 (RFC 826, Ethernet/IPv4).
    const std::uint8_t m[6] = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
    std::uint8_t request[28] = {0, 1, 8, 0, 6, 4, 0, 1, m[0], m[1], m[2], m[3], m[4], m[5], 10, 0, 2, 15,
                                0, 0, 0, 0, 0, 0, 10, 0, 2, 2};
    auto p = netdev::allocate();
    ASSERT_OK(p);
    std::memcpy(p.value()->put(sizeof(request)), request, sizeof(request));
    ASSERT_OK(i->send_frame(std::move(p.value()), netdev::MacAddress::broadcast(), 0x0806));
    EXPECT_TRUE(wait_for([] { return reply.count > 0; }));
    EXPECT_EQ(reply.sender_ip[3], 2u);
    EXPECT_GT(i->counters().rx_packets, before.rx_packets);
    EXPECT_GT(virtio_net::stats().rx_completions, 0u);
    netdev::unregister_ethertype(0x0806);
    // The ring was topped up after the receive.
    EXPECT_TRUE(wait_for([] { return virtio_net::stats().rx_posted == virtio_net::stats().rx_ring; }));
}
