#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <cstring>
#include <ktest/ktest.hpp>
#include <netdev/pair.hpp>
#include <sched/sched.hpp>

using namespace tessera;
using base::Error;

namespace {

constexpr std::uint16_t kTestType = 0x88b5;
constexpr std::uint16_t kOtherType = 0x88b6;

// What a handler saw; reset per case.
struct Seen {
    unsigned frames = 0;
    std::uint32_t last_length = 0;
    std::uint8_t first_payload = 0;
    netdev::Interface* iface = nullptr;
    netdev::MacAddress source{};
    bool in_thread = false;
    char order[64] = {};
};

void record(netdev::Interface& iface, netdev::PacketRef packet, void* context) {
    auto& seen = *static_cast<Seen*>(context);
    if (seen.frames < sizeof(seen.order)) seen.order[seen.frames] = static_cast<char>(packet->data()[0]);
    ++seen.frames;
    seen.last_length = static_cast<std::uint32_t>(packet->length());
    seen.first_payload = static_cast<std::uint8_t>(packet->data()[0]);
    seen.iface = &iface;
    seen.in_thread = netdev::in_network_thread();
    seen.source = reinterpret_cast<const netdev::EthernetHeader*>(packet->link_header())->source_mac();
}

// Holds the network thread off (this hart's only other runnable thread of
// note) while in scope: the caller runs above it, so queued work waits.
class AboveNetworkThread {
public:
    AboveNetworkThread() { VERIFY(sched::set_priority(sched::self(), CONFIG_NETDEV_THREAD_PRIORITY + 1).ok()); }
    ~AboveNetworkThread() { VERIFY(sched::set_priority(sched::self(), CONFIG_SCHED_MAIN_PRIORITY).ok()); }
};

// A frame with `payload` bytes, each `fill`, ready for send_frame().
netdev::PacketRef make_payload(std::size_t payload, std::uint8_t fill) {
    auto p = netdev::allocate();
    VERIFY(p.ok());
    std::byte* data = p.value()->put(payload);
    VERIFY(data);
    std::memset(data, fill, payload);
    return std::move(p.value());
}

} // namespace

KTEST(netdev, packet_window_push_pull_put_trim) {
    auto r = netdev::allocate(32);
    ASSERT_OK(r);
    netdev::PacketRef p = std::move(r.value());
    EXPECT_EQ(p->headroom(), 32u);
    EXPECT_EQ(p->length(), 0u);
    EXPECT_TRUE(p->put(100) != nullptr);
    EXPECT_EQ(p->length(), 100u);
    std::byte* start = p->bytes();
    EXPECT_TRUE(p->push(14) == start - 14);
    EXPECT_EQ(p->length(), 114u);
    EXPECT_TRUE(p->push(19) == nullptr); // only 18 bytes of headroom left
    EXPECT_EQ(p->length(), 114u);
    EXPECT_TRUE(p->pull(14) == start - 14);
    EXPECT_TRUE(p->pull(101) == nullptr);
    p->trim(60);
    EXPECT_EQ(p->length(), 60u);
    p->trim(80); // never grows
    EXPECT_EQ(p->length(), 60u);
    EXPECT_TRUE(p->put(p->tailroom() + 1) == nullptr);
    EXPECT_EQ(p->headroom() + p->length() + p->tailroom(), netdev::kBufferSize);
    EXPECT_ERROR(p->set_window(netdev::kBufferSize, 1), Error::InvalidArgument);
    EXPECT_ERROR(netdev::allocate(netdev::kBufferSize + 1), Error::InvalidArgument);
}

KTEST(netdev, packet_ref_owns_exactly_once) {
    auto start = netdev::pool_stats();
    {
        auto r = netdev::allocate();
        ASSERT_OK(r);
        netdev::PacketRef a = std::move(r.value());
        EXPECT_EQ(netdev::pool_stats().free, start.free - 1);
        netdev::PacketRef b = std::move(a); // moved, not copied
        EXPECT_FALSE(static_cast<bool>(a));
        EXPECT_TRUE(static_cast<bool>(b));
        EXPECT_EQ(netdev::pool_stats().free, start.free - 1);
        netdev::Packet* raw = b.release(); // parked, e.g. in a descriptor ring
        EXPECT_EQ(netdev::pool_stats().free, start.free - 1);
        netdev::PacketRef c = netdev::PacketRef::adopt(raw);
        a = std::move(c); // assignment into an empty handle
        netdev::PacketRef d = netdev::allocate().value();
        EXPECT_EQ(netdev::pool_stats().free, start.free - 2);
        d = std::move(a); // assignment frees what d held
        EXPECT_EQ(netdev::pool_stats().free, start.free - 1);
    }
    EXPECT_EQ(netdev::pool_stats().free, start.free);
}

KTEST(netdev, pool_exhaustion_fails_cleanly_and_recovers) {
    auto start = netdev::pool_stats();
    EXPECT_EQ(start.total, static_cast<std::uint32_t>(CONFIG_NETDEV_PACKETS));
    static netdev::PacketRef held[CONFIG_NETDEV_PACKETS];
    unsigned n = 0;
    for (; n < CONFIG_NETDEV_PACKETS; ++n) {
        auto r = netdev::allocate();
        if (!r.ok()) break;
        held[n] = std::move(r.value());
    }
    EXPECT_EQ(n, start.free);
    EXPECT_ERROR(netdev::allocate(), Error::NoMemory);
    EXPECT_ERROR(netdev::allocate(), Error::NoMemory);
    auto empty = netdev::pool_stats();
    EXPECT_EQ(empty.free, 0u);
    EXPECT_EQ(empty.min_free, 0u);
    EXPECT_GE(empty.failures, start.failures + 2); // a NIC's RX refill may fail meanwhile too
    for (unsigned i = 0; i < n; ++i) held[i].reset();
    EXPECT_EQ(netdev::pool_stats().free, start.free);
    auto again = netdev::allocate();
    EXPECT_OK(again);
    netdev::reset_min_free();
}

KTEST(netdev, allocation_works_in_interrupt_context) {
    // The receive path allocates refill buffers in IRQ handlers; pretend.
    auto& hart = arch::this_hart();
    auto start = netdev::pool_stats();
    {
        arch::IrqGuard irq;
        ++hart.trap_depth;
        auto r = netdev::allocate();
        EXPECT_TRUE(r.ok());
        --hart.trap_depth;
    }
    EXPECT_EQ(netdev::pool_stats().free, start.free);
}

KTEST(netdev, pair_delivers_by_ethertype_in_the_network_thread) {
    Seen seen;
    netdev::Pair pair("ta0", "tb0");
    ASSERT_OK(pair.attach());
    ASSERT_OK(netdev::register_ethertype(kTestType, record, &seen));
    EXPECT_ERROR(netdev::register_ethertype(kTestType, record, &seen), Error::Busy);
    EXPECT_TRUE(netdev::find_interface("tb0") == &pair.b());
    EXPECT_TRUE(netdev::interface_at(pair.a().index()) == &pair.a());
    auto pool = netdev::pool_stats();
    for (char c = 'a'; c < 'a' + 20; ++c)
        ASSERT_OK(pair.a().send_frame(make_payload(100, static_cast<std::uint8_t>(c)), pair.b().mac(), kTestType));
    netdev::flush();
    EXPECT_EQ(seen.frames, 20u);
    EXPECT_EQ(std::string_view(seen.order, 20), "abcdefghijklmnopqrst"); // in order
    EXPECT_EQ(seen.last_length, 100u);
    EXPECT_TRUE(seen.iface == &pair.b());
    EXPECT_TRUE(seen.source == pair.a().mac());
    EXPECT_TRUE(seen.in_thread);
    EXPECT_EQ(netdev::pool_stats().free, pool.free); // the handler's packets went back
    netdev::unregister_ethertype(kTestType);
    EXPECT_TRUE(netdev::find_interface("tb0") == &pair.b());
    pair.detach();
    EXPECT_TRUE(netdev::find_interface("tb0") == nullptr);
}

KTEST(netdev, counters_and_short_frames_are_padded) {
    Seen seen;
    netdev::Pair pair("ta1", "tb1");
    ASSERT_OK(pair.attach());
    ASSERT_OK(netdev::register_ethertype(kTestType, record, &seen));
    ASSERT_OK(pair.a().send_frame(make_payload(10, 1), pair.b().mac(), kTestType)); // 24 bytes -> 60
    ASSERT_OK(pair.a().send_frame(make_payload(1000, 2), pair.b().mac(), kTestType));
    netdev::flush();
    auto a = pair.a().counters(), b = pair.b().counters();
    EXPECT_EQ(a.tx_packets, 2u);
    EXPECT_EQ(a.tx_bytes, 60u + 1014u);
    EXPECT_EQ(b.rx_packets, 2u);
    EXPECT_EQ(b.rx_bytes, 60u + 1014u);
    EXPECT_EQ(seen.frames, 2u);
    EXPECT_EQ(b.rx_drops + b.rx_errors + a.tx_drops + a.tx_errors, 0u);
    // Oversized and link-down frames are refused and counted.
    EXPECT_ERROR(pair.a().send_frame(make_payload(netdev::kMaxFrame, 3), pair.b().mac(), kTestType), Error::Malformed);
    EXPECT_EQ(pair.a().counters().tx_errors, 1u);
    pair.a().set_link_up(false);
    EXPECT_ERROR(pair.a().send_frame(make_payload(10, 4), pair.b().mac(), kTestType), Error::Unavailable);
    EXPECT_EQ(pair.a().counters().tx_drops, 1u);
    netdev::unregister_ethertype(kTestType);
}

KTEST(netdev, runts_are_errors_and_unknown_ethertypes_drops) {
    Seen seen;
    netdev::Pair pair("ta2", "tb2");
    ASSERT_OK(pair.attach());
    ASSERT_OK(netdev::register_ethertype(kTestType, record, &seen));
    auto start = netdev::stats();
    auto pool = netdev::pool_stats();
    // Runts only come from drivers (transmit pads): hand them in directly.
    for (std::size_t length : {0u, 1u, 13u}) {
        auto p = netdev::allocate().value();
        (void)p->put(length);
        netdev::receive(pair.b(), std::move(p));
    }
    ASSERT_OK(pair.a().send_frame(make_payload(50, 5), pair.b().mac(), kOtherType));
    ASSERT_OK(pair.a().send_frame(make_payload(50, 6), pair.b().mac(), kTestType)); // still served
    netdev::flush();
    auto b = pair.b().counters();
    EXPECT_EQ(b.rx_errors, 3u);
    EXPECT_EQ(b.rx_drops, 1u);
    EXPECT_EQ(seen.frames, 1u);
    EXPECT_EQ(seen.first_payload, 6u);
    auto now = netdev::stats();
    EXPECT_EQ(now.runts - start.runts, 3u);
    EXPECT_EQ(now.unknown_ethertype - start.unknown_ethertype, 1u);
    EXPECT_EQ(netdev::pool_stats().free, pool.free);
    netdev::unregister_ethertype(kTestType);
}

namespace {
netdev::Pair::Verdict drop_odd(netdev::Interface&, netdev::Packet& frame, void* context) {
    auto& n = *static_cast<unsigned*>(context);
    if (n++ % 2) return netdev::Pair::Verdict::Drop;
    frame.data()[netdev::kEthernetHeader] = std::byte{0xee}; // corrupt the first payload byte
    return netdev::Pair::Verdict::Deliver;
}
} // namespace

KTEST(netdev, pair_hook_drops_and_corrupts) {
    Seen seen;
    unsigned n = 0;
    netdev::Pair pair("ta3", "tb3");
    ASSERT_OK(pair.attach());
    pair.set_hook(drop_odd, &n);
    ASSERT_OK(netdev::register_ethertype(kTestType, record, &seen));
    auto pool = netdev::pool_stats();
    for (int i = 0; i < 10; ++i) ASSERT_OK(pair.a().send_frame(make_payload(50, 1), pair.b().mac(), kTestType));
    netdev::flush();
    EXPECT_EQ(seen.frames, 5u);
    EXPECT_EQ(pair.hook_drops(), 5u);
    EXPECT_EQ(seen.first_payload, 0xeeu);
    EXPECT_EQ(netdev::pool_stats().free, pool.free);
    netdev::unregister_ethertype(kTestType);
}

KTEST(netdev, full_receive_queue_drops_and_counts) {
    netdev::Pair pair("ta4", "tb4");
    ASSERT_OK(pair.attach());
    auto start = netdev::stats();
    auto pool = netdev::pool_stats();
    unsigned sent = 0;
    {
        // The network thread cannot run here (on one hart), so the ring
        // fills up.
        AboveNetworkThread above;
        for (unsigned i = 0; i < CONFIG_NETDEV_RX_QUEUE + 5 && i + 8 < pool.free; ++i) {
            auto p = netdev::allocate().value();
            (void)p->put(60);
            netdev::receive(pair.b(), std::move(p));
            ++sent;
        }
    }
    netdev::flush();
    auto now = netdev::stats();
    EXPECT_GT(sent, static_cast<unsigned>(CONFIG_NETDEV_RX_QUEUE));
    if (sched::online_harts() == 1) {
        EXPECT_EQ(now.queue_full - start.queue_full, sent - CONFIG_NETDEV_RX_QUEUE);
        EXPECT_EQ(now.queue_max, static_cast<std::uint32_t>(CONFIG_NETDEV_RX_QUEUE));
    }
    auto b = pair.b().counters();
    EXPECT_EQ(b.rx_packets + (now.queue_full - start.queue_full), sent);
    EXPECT_EQ(netdev::pool_stats().free, pool.free);
}

namespace {
struct WorkProbe {
    netdev::Work work;
    unsigned runs = 0;
    bool in_thread = false;
};
void run_probe(void* p) {
    auto& probe = *static_cast<WorkProbe*>(p);
    ++probe.runs;
    probe.in_thread = netdev::in_network_thread();
}
} // namespace

KTEST(netdev, work_runs_once_in_the_network_thread) {
    WorkProbe probe;
    probe.work.function = run_probe;
    probe.work.context = &probe;
    {
        AboveNetworkThread above; // both before the thread can run: coalesced
        netdev::schedule(probe.work);
        netdev::schedule(probe.work);
    }
    netdev::flush();
    EXPECT_EQ(probe.runs, 1u);
    EXPECT_TRUE(probe.in_thread);
    netdev::schedule(probe.work);
    netdev::flush();
    EXPECT_EQ(probe.runs, 2u);
}

namespace {
constinit WorkProbe g_later_probe{{run_probe, &g_later_probe}};
void schedule_later(void*) { netdev::schedule_after_batch(g_later_probe.work); }
} // namespace

KTEST(netdev, flush_waits_for_the_work_that_work_schedules_after_the_batch) {
    g_later_probe.runs = 0;
    netdev::Work first{schedule_later, nullptr};
    for (unsigned i = 1; i <= 3; ++i) {
        {
            AboveNetworkThread above; // queued, not yet run, when flush() looks
            netdev::schedule(first);
        }
        netdev::flush();
        EXPECT_EQ(g_later_probe.runs, i);
        EXPECT_TRUE(g_later_probe.in_thread);
    }
}

namespace {
// Registered with add_transmit_ready() for good (there is no removal), so
// it must outlive the case.
constinit WorkProbe g_ready_probe{{run_probe, &g_ready_probe}};
base::Result<void> refuse(netdev::Interface&, netdev::PacketRef) { return base::Error::Overloaded; }
constexpr netdev::DriverOps kFullOps = {refuse};
} // namespace

KTEST(netdev, transmit_space_after_a_full_queue_schedules_ready_work_once) {
    ASSERT_OK(netdev::add_transmit_ready(g_ready_probe.work));
    ASSERT_OK(netdev::add_transmit_ready(g_ready_probe.work)); // once is enough
    netdev::Interface iface("full0", kFullOps, nullptr);
    netdev::flush();
    unsigned runs = g_ready_probe.runs;
    iface.transmit_space(); // room, but the queue was never full: nobody waits
    netdev::flush();
    EXPECT_EQ(g_ready_probe.runs, runs);
    iface.note_transmit_full();
    iface.transmit_space();
    iface.transmit_space(); // the second finds the mark gone
    netdev::flush();
    EXPECT_EQ(g_ready_probe.runs, runs + 1);
    EXPECT_TRUE(g_ready_probe.in_thread);
}

KTEST(netdev, unregister_drops_queued_frames_of_the_interface) {
    Seen seen;
    auto pool = netdev::pool_stats();
    ASSERT_OK(netdev::register_ethertype(kTestType, record, &seen));
    {
        AboveNetworkThread above; // frames stay queued ...
        netdev::Pair pair("ta5", "tb5");
        ASSERT_OK(pair.attach());
        EXPECT_ERROR(netdev::register_interface(pair.a()), Error::Exists);
        for (int i = 0; i < 4; ++i) ASSERT_OK(pair.a().send_frame(make_payload(50, 1), pair.b().mac(), kTestType));
        EXPECT_EQ(netdev::pool_stats().free, pool.free - 4);
    } // ... until ~Pair purges them (before ~AboveNetworkThread)
    netdev::flush();
    EXPECT_EQ(seen.frames, 0u);
    EXPECT_EQ(netdev::pool_stats().free, pool.free);
    netdev::unregister_ethertype(kTestType);
}

namespace {
// A whole frame as a driver hands it over: Ethernet header, then `fill`.
netdev::PacketRef raw_frame(const netdev::MacAddress& to, std::uint16_t ethertype, std::uint8_t fill) {
    netdev::PacketRef p = make_payload(50, fill);
    auto* header = reinterpret_cast<netdev::EthernetHeader*>(p->push(sizeof(netdev::EthernetHeader)));
    VERIFY(header);
    std::memcpy(header->destination, to.bytes.data(), 6);
    std::memset(header->source, 0x02, 6);
    header->ethertype_be[0] = static_cast<std::uint8_t>(ethertype >> 8);
    header->ethertype_be[1] = static_cast<std::uint8_t>(ethertype);
    return p;
}
} // namespace

KTEST(netdev, a_batch_of_received_frames_is_queued_in_order_within_the_room) {
    Seen seen;
    netdev::Pair pair("ta5", "tb5");
    ASSERT_OK(pair.attach());
    ASSERT_OK(netdev::register_ethertype(kTestType, record, &seen));
    auto pool = netdev::pool_stats();
    auto start = netdev::stats();
    {
        // The network thread cannot take any before the whole batch is in
        // (on one hart), so the room it left is exact.
        AboveNetworkThread above;
        const unsigned room = netdev::receive_room();
        EXPECT_LE(room, static_cast<unsigned>(CONFIG_NETDEV_RX_QUEUE));
        netdev::PacketRef batch[4];
        for (unsigned i = 0; i < 4; ++i) batch[i] = raw_frame(pair.b().mac(), kTestType, static_cast<std::uint8_t>('a' + i));
        netdev::receive(pair.b(), std::span(batch));
        for (const auto& p : batch) EXPECT_FALSE(p); // all taken
        if (sched::online_harts() == 1) EXPECT_LE(netdev::receive_room(), room - 4); // less if eth0 got one too
    }
    netdev::flush();
    EXPECT_EQ(seen.frames, 4u);
    EXPECT_EQ(std::string_view(seen.order, 4), "abcd");
    EXPECT_EQ(pair.b().counters().rx_packets, 4u);
    EXPECT_EQ(netdev::stats().queue_full, start.queue_full);
    EXPECT_EQ(netdev::pool_stats().free, pool.free);
    netdev::unregister_ethertype(kTestType);
}

KTEST(netdev, a_batch_beyond_the_room_drops_the_excess_and_counts_it) {
    if (sched::online_harts() != 1) {
        ktest_context.skip("the room is exact only with the network thread held off on the only hart");
        return;
    }
    constexpr unsigned kExtra = 3, kBatch = 16;
    auto pool = netdev::pool_stats();
    if (pool.free < CONFIG_NETDEV_RX_QUEUE + kBatch + kExtra) {
        ktest_context.skip("the packet pool is smaller than the queue");
        return;
    }
    netdev::Pair pair("ta6", "tb6");
    ASSERT_OK(pair.attach());
    auto start = netdev::stats();
    unsigned handed = 0;
    {
        AboveNetworkThread above;
        netdev::PacketRef batch[kBatch + kExtra];
        for (;;) {
            const unsigned room = netdev::receive_room();
            const bool last = room <= kBatch;
            const unsigned n = last ? room + kExtra : kBatch;
            for (unsigned i = 0; i < n; ++i) batch[i] = raw_frame(pair.b().mac(), kOtherType, 0);
            netdev::receive(pair.b(), std::span(batch, n));
            handed += n;
            if (last) break;
        }
        EXPECT_EQ(netdev::receive_room(), 0u);
    }
    netdev::flush();
    auto now = netdev::stats();
    EXPECT_EQ(now.queue_full - start.queue_full, kExtra);
    // Queued ones count as received (their EtherType, which nobody
    // handles, then drops them in the network thread); the excess never was.
    EXPECT_EQ(pair.b().counters().rx_packets, handed - kExtra);
    EXPECT_EQ(netdev::pool_stats().free, pool.free);
}
