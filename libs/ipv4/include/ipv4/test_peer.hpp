#pragma once
// A scripted peer for the network stack's in-kernel tests (ktest only).
//
// The stack's state is global (one per image), so tests do not run two
// stacks: the stack lives on interface A of a netdev::Pair and the test
// plays the peer on B. Frames the stack sends from A are captured by the
// Pair's hook (copied, then dropped) for the test to parse; frames the
// test crafts are transmitted from B and reach the stack like real ones
// (through netdev::receive and the network thread). That is also how
// malformed input is injected.
//
//     ipv4::TestPeer peer;               // stack 192.168.7.1/24 on "tpa0"
//     ASSERT_OK(peer.attach());          // peer is 192.168.7.2 (MAC of "tpb0")
//     peer.send_ip(ipv4::Protocol::Udp, payload);
//     auto frame = peer.next(deadline);  // what the stack answered
//
// One TestPeer at a time (the capture ring is static). Threads only.
#include <arch/spinlock.hpp>
#include <cstring>
#include <eth-arp/arp.hpp>
#include <ipv4/ipv4.hpp>
#include <netdev/pair.hpp>
#include <optional>
#include <sched/sched.hpp>
#include <time/time.hpp>

namespace tessera::ipv4 {

// A frame captured from the stack.
struct TestFrame {
    std::size_t length = 0;
    time::Ticks sent_at = 0; // when the stack handed it to its interface (not when the test got to it)
    std::byte bytes[netdev::kMaxFrame];
    // Views past the Ethernet header.
    [[nodiscard]] std::uint16_t ethertype() const { return std::uint16_t(unsigned(bytes[12]) << 8 | unsigned(bytes[13])); }
    [[nodiscard]] const std::byte* l3() const { return bytes + netdev::kEthernetHeader; }
    [[nodiscard]] std::size_t l3_length() const { return length - netdev::kEthernetHeader; }
    [[nodiscard]] unsigned ihl() const { return (unsigned(l3()[0]) & 0xf) * 4; }
    [[nodiscard]] const std::byte* l4() const { return l3() + ihl(); }
    [[nodiscard]] std::uint8_t protocol() const { return std::uint8_t(l3()[9]); }
    [[nodiscard]] std::size_t ip_total() const { return std::size_t(unsigned(l3()[2]) << 8 | unsigned(l3()[3])); }
    [[nodiscard]] std::size_t l4_length() const { return ip_total() - ihl(); }
};

class TestPeer {
public:
    static constexpr Address kStack = Address::from(192, 168, 7, 1);
    static constexpr Address kPeer = Address::from(192, 168, 7, 2);
    static constexpr unsigned kPrefix = 24;
    static constexpr unsigned kCapture = 32;

    using Frame = TestFrame;

    TestPeer() : m_pair("tpa0", "tpb0") {}
    ~TestPeer() { detach(); }

    // Registers the pair, configures the stack on A (unless
    // configure_stack is false: DHCP tests), and (unless resolve_peer is
    // false) makes the peer's MAC known to ARP.
    base::Result<void> attach(bool resolve_peer = true, bool configure_stack = true) {
        s_head = s_count = 0;
        m_pair.set_hook(hook, this);
        TRY(m_pair.attach());
        m_attached = true;
        if (configure_stack) TRY(configure(stack(), kStack, kPrefix));
        if (resolve_peer) TRY(eth_arp::add_static(stack(), kPeer.value, peer_mac()));
        netdev::flush();
        clear();
        return {};
    }
    void detach() {
        if (!m_attached) return;
        deconfigure(stack());
        netdev::flush();
        m_pair.detach();
        m_attached = false;
        clear();
    }

    netdev::Interface& stack() { return m_pair.a(); }
    netdev::Interface& peer() { return m_pair.b(); }
    netdev::MacAddress peer_mac() { return m_pair.b().mac(); }
    netdev::Pair& pair() { return m_pair; }

    // Sends a raw frame (Ethernet header included) from the peer and waits
    // until the stack has handled it.
    void inject(const std::byte* frame, std::size_t length) {
        auto p = netdev::allocate();
        VERIFY(p.ok());
        std::byte* b = p.value()->put(length);
        VERIFY(b);
        std::memcpy(b, frame, length);
        (void)peer().transmit(std::move(p.value()));
        netdev::flush();
    }
    // Builds Ethernet + IPv4 (+ payload) addressed to the stack and
    // injects it. `mutate` may damage the frame after the checksum.
    void send_ip(std::uint8_t protocol, const std::byte* payload, std::size_t length, std::uint16_t id = 0x1234,
                 std::uint16_t flags_offset = 0, Address source = kPeer, Address destination = kStack,
                 void (*mutate)(std::byte* ip, std::size_t& frame_length) = nullptr) {
        static std::byte frame[netdev::kMaxFrame + 64];
        std::size_t total = kHeaderLength + length;
        VERIFY(netdev::kEthernetHeader + total <= sizeof(frame));
        ethernet(frame, destination.is_broadcast() ? netdev::MacAddress::broadcast() : stack().mac(), 0x0800);
        std::byte* h = frame + netdev::kEthernetHeader;
        h[0] = std::byte{0x45};
        h[1] = std::byte{0};
        h[2] = std::byte(total >> 8); h[3] = std::byte(total);
        h[4] = std::byte(id >> 8); h[5] = std::byte(id);
        h[6] = std::byte(flags_offset >> 8); h[7] = std::byte(flags_offset);
        h[8] = std::byte{64};
        h[9] = std::byte{protocol};
        h[10] = h[11] = std::byte{0};
        source.store(h + 12);
        destination.store(h + 16);
        fix_ip_checksum(h);
        if (length) std::memcpy(h + kHeaderLength, payload, length);
        std::size_t frame_length = netdev::kEthernetHeader + total;
        if (mutate) mutate(h, frame_length);
        inject(frame, frame_length);
    }
    // A UDP datagram (checksum computed unless `checksum` is false: then 0).
    void send_udp(std::uint16_t source_port, std::uint16_t port, const std::byte* data, std::size_t length,
                  Address destination = kStack, bool checksum = true, Address source = kPeer,
                  std::uint16_t id = 0x2345, std::uint16_t flags_offset = 0) {
        static std::byte u[netdev::kMaxFrame];
        std::size_t n = 8 + length;
        VERIFY(n <= sizeof(u));
        u[0] = std::byte(source_port >> 8); u[1] = std::byte(source_port);
        u[2] = std::byte(port >> 8); u[3] = std::byte(port);
        u[4] = std::byte(n >> 8); u[5] = std::byte(n);
        u[6] = u[7] = std::byte{0};
        if (length) std::memcpy(u + 8, data, length);
        if (checksum) {
            std::uint16_t sum = checksum_finish(checksum_add(
                {u, n}, pseudo_header_sum(source, destination, Protocol::Udp, static_cast<std::uint16_t>(n))));
            if (sum == 0) sum = 0xffff;
            u[6] = std::byte(sum >> 8); u[7] = std::byte(sum);
        }
        send_ip(17, u, n, id, flags_offset, source, destination);
    }
    void ethernet(std::byte* frame, netdev::MacAddress destination, std::uint16_t type) {
        std::memcpy(frame, destination.bytes.data(), 6);
        std::memcpy(frame + 6, peer_mac().bytes.data(), 6);
        frame[12] = std::byte(type >> 8);
        frame[13] = std::byte(type);
    }

    // The next frame the stack sent (copied into `out`), waiting until
    // `deadline` (absolute ticks). False if none came.
    bool next(Frame& out, time::Ticks deadline) {
        for (;;) {
            {
                arch::SpinlockGuard guard(s_lock);
                if (s_count) {
                    out = s_ring[s_head];
                    s_head = (s_head + 1) % kCapture;
                    --s_count;
                    return true;
                }
            }
            if (time::now() >= deadline) return false;
            sched::sleep_for_ns(100'000);
        }
    }
    // The next frame of `ethertype` (others skipped), or false.
    bool next_of(Frame& out, std::uint16_t ethertype, time::Ticks deadline) {
        while (next(out, deadline))
            if (out.ethertype() == ethertype) return true;
        return false;
    }
    unsigned captured() {
        arch::SpinlockGuard guard(s_lock);
        return s_count;
    }
    void clear() {
        arch::SpinlockGuard guard(s_lock);
        s_head = s_count = 0;
    }
    // Recomputes the checksum of the IP header at `h` (after a mutation).
    static void fix_ip_checksum(std::byte* h) {
        std::size_t ihl = (unsigned(h[0]) & 0xf) * 4;
        h[10] = h[11] = std::byte{0};
        std::uint16_t sum = checksum_finish(checksum_add({h, ihl < kHeaderLength ? kHeaderLength : ihl}));
        h[10] = std::byte(sum >> 8);
        h[11] = std::byte(sum);
    }
    // The pool's free count once everything in flight has been handled.
    static std::uint32_t settled_pool_free() {
        netdev::flush();
        return netdev::pool_stats().free;
    }
    static time::Ticks in_ms(std::uint64_t ms) { return time::now() + time::from_ns(ms * 1'000'000); }

private:
    static netdev::Pair::Verdict hook(netdev::Interface& from, netdev::Packet& frame, void* context) {
        auto* self = static_cast<TestPeer*>(context);
        if (&from != &self->m_pair.a()) return netdev::Pair::Verdict::Deliver;
        arch::SpinlockGuard guard(s_lock);
        if (s_count < kCapture) {
            Frame& f = s_ring[(s_head + s_count) % kCapture];
            f.length = frame.length() < sizeof(f.bytes) ? frame.length() : sizeof(f.bytes);
            f.sent_at = time::now();
            std::memcpy(f.bytes, frame.bytes(), f.length);
            ++s_count;
        }
        return netdev::Pair::Verdict::Drop;
    }

    netdev::Pair m_pair;
    bool m_attached = false;
    static inline arch::Spinlock s_lock{"test_peer"}; // the capture ring: a leaf (test only)
    static inline TestFrame s_ring[32];
    static inline unsigned s_head = 0, s_count = 0;
};

} // namespace tessera::ipv4
