// The TCP ktests' wire (wire.hpp).
#include "wire.hpp"
#include <algorithm>
#include <sched/sched.hpp>

namespace tessera::tcp::test_wire {

constinit Wire g_wire;
constinit std::byte g_out[8192];
constinit std::byte g_in[8192];

namespace {

std::uintptr_t pack(ipv4::Address s, ipv4::Address d) { return std::uintptr_t(s.value) << 32 | d.value; }

void deliver(void*) {
    for (;;) {
        netdev::Packet* p;
        {
            arch::SpinlockGuard g(g_wire.lock);
            p = g_wire.head;
            if (!p) return;
            g_wire.head = p->next;
            if (!g_wire.head) g_wire.tail = nullptr;
        }
        p->next = nullptr;
        auto ref = netdev::PacketRef::adopt(p);
        ipv4::Address src{std::uint32_t(p->owner_word >> 32)}, dst{std::uint32_t(p->owner_word)};
        inject(src, dst, std::move(ref));
    }
}

void enqueue(netdev::Packet* p) {
    arch::SpinlockGuard g(g_wire.lock);
    p->next = nullptr;
    if (g_wire.tail) g_wire.tail->next = p;
    else g_wire.head = p;
    g_wire.tail = p;
}

base::Result<void> hook(netdev::PacketRef packet, ipv4::Address src, ipv4::Address dst, void*) {
    ++g_wire.segments;
    Segment s;
    VERIFY(parse(packet->data(), s).ok());
    Verdict v = g_wire.filter ? g_wire.filter(s, src, dst, g_wire.filter_context) : Verdict::Pass;
    if (v == Verdict::Full) return base::Error::Overloaded; // never sent: the sequence state stays
    if (src == kClient) g_wire.client_next = s.seq + s.length();
    if (src == kServer) g_wire.server_next = s.seq + s.length();
    if (v == Verdict::Drop) return {};
    netdev::Packet* p = packet.release();
    p->owner_word = pack(src, dst);
    if (v == Verdict::Hold) {
        arch::SpinlockGuard g(g_wire.lock);
        p->next = g_wire.held;
        g_wire.held = p;
        return {};
    }
    enqueue(p);
    netdev::schedule(g_wire.work);
    return {};
}

} // namespace

void release_held() {
    netdev::Packet* list;
    {
        arch::SpinlockGuard g(g_wire.lock);
        list = g_wire.held;
        g_wire.held = nullptr;
    }
    while (list) {
        netdev::Packet* next = list->next;
        enqueue(list);
        list = next;
    }
    netdev::schedule(g_wire.work);
}

time::Ticks in_ms(std::uint64_t ms) { return time::now() + time::from_ns(ms * 1'000'000); }

Net::Net() {
    g_wire.work.function = deliver;
    g_wire.filter = nullptr;
    g_wire.segments = 0;
    set_output_hook(hook, nullptr);
    netdev::flush();
    m_free_at_start = netdev::pool_stats().free;
}

Net::~Net() {
    g_wire.filter = nullptr;
    release_held();
    if (m_listener) close(m_listener);
    netdev::flush();
    // Let TIME-WAIT and orphaned closes finish.
    time::Ticks until = in_ms(3000);
    while (stats().connections_in_use && time::now() < until) sched::sleep_until(in_ms(10));
    netdev::flush();
    set_output_hook(nullptr, nullptr);
}

Listener* Net::listen(unsigned backlog) {
    auto l = tcp::listen(kPort, backlog);
    VERIFY(l.ok());
    m_listener = l.value();
    return m_listener;
}

bool Net::open(Connection*& client, Connection*& server) { return open_pair(listen(), client, server); }

bool Net::open_warm(Connection*& client, Connection*& server, std::uint32_t bytes) {
    return open(client, server) && transfer(client, server, bytes, in_ms(10000));
}

base::Result<Connection*> dial(std::uint16_t port, ConnectOptions o) {
    o.source = kClient;
    return connect(kServer, port, in_ms(5000), o);
}

bool open_pair(Listener* l, Connection*& client, Connection*& server, const ConnectOptions& o) {
    auto c = dial(kPort, o);
    if (!c.ok()) return false;
    auto s = accept(l, in_ms(5000));
    if (!s.ok()) return false;
    client = c.value();
    server = s.value();
    return true;
}

void fill_pattern(std::span<std::byte> b, std::uint32_t start) {
    for (std::size_t i = 0; i < b.size(); ++i) b[i] = std::byte((start + i) * 7 + ((start + i) >> 8));
}

bool check_pattern(std::span<const std::byte> b, std::uint32_t start) {
    for (std::size_t i = 0; i < b.size(); ++i)
        if (b[i] != std::byte((start + i) * 7 + ((start + i) >> 8))) return false;
    return true;
}

bool transfer(Connection* from, Connection* to, std::uint32_t total, time::Ticks deadline,
              void (*between)(void*), void* context) {
    std::uint32_t sent = 0, received = 0;
    while (received < total) {
        if (time::now() > deadline) return false;
        if (sent < total) {
            std::uint32_t n = std::min<std::uint32_t>(total - sent, sizeof g_out);
            fill_pattern({g_out, n}, sent);
            auto r = try_send(from, {g_out, n});
            if (r.ok()) sent += static_cast<std::uint32_t>(r.value());
            else if (r.error() != base::Error::WouldBlock) return false;
        }
        if (between) between(context);
        auto r = receive(to, g_in, sent > received ? in_ms(50) : time::now());
        if (r.ok()) {
            if (r.value() == 0) return false;
            if (!check_pattern({g_in, r.value()}, received)) return false;
            received += static_cast<std::uint32_t>(r.value());
        } else if (r.error() != base::Error::WouldBlock && r.error() != base::Error::TimedOut) {
            return false;
        }
    }
    return true;
}

Segment next_from_client(std::uint16_t client_port, std::uint8_t flags) {
    Segment seg;
    seg.source_port = client_port;
    seg.destination_port = kPort;
    seg.seq = g_wire.client_next;
    seg.ack = g_wire.server_next;
    seg.flags = flags;
    seg.window = 1000;
    return seg;
}

Segment syn_from(std::uint16_t client_port, Seq isn, const Options& o) {
    Segment syn;
    syn.source_port = client_port;
    syn.destination_port = kPort;
    syn.seq = isn;
    syn.flags = flag::kSyn;
    syn.window = 65535;
    syn.options = o;
    return syn;
}

void inject_to_server(std::uint16_t client_port, Seq seq, Seq ack, std::uint8_t flags, std::uint16_t window,
                      ipv4::Address from) {
    Segment s;
    s.source_port = client_port;
    s.destination_port = kPort;
    s.seq = seq;
    s.ack = ack;
    s.flags = flags;
    s.window = window;
    inject_crafted(s, {}, from, kServer, [](std::byte*) {});
}

} // namespace tessera::tcp::test_wire
