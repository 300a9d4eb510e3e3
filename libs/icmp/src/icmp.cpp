// ICMP: echo, ping, errors with a token bucket.
//
// g_lock (sync::Mutex) guards the ping table, the bucket and the counters;
// it is released before ipv4::send. A ping waits on its slot's wait queue:
// the network thread fills the slot under g_lock and wakes after releasing.
#include <base/endian.hpp>
#include <cstring>
#include <icmp/icmp.hpp>
#include <sched/wait.hpp>
#include <sync/mutex.hpp>

namespace tessera::icmp {
namespace {

constexpr std::size_t kHeader = 8;
constexpr std::size_t kMaxPing = 1500 - ipv4::kHeaderLength - kHeader;

struct Ping {
    bool used = false;
    std::atomic<std::uint32_t> done{0};
    std::uint16_t id = 0, sequence = 0;
    ipv4::Address destination;
    time::Ticks sent = 0, received = 0;
    sched::WaitQueue waiters;
};

sync::Mutex g_lock{"icmp"}; // see the top of the file
Ping g_pings[CONFIG_ICMP_PINGS];
Stats g_stats{};
std::uint16_t g_sequence = 0;
// Token bucket in milli-tokens, refilled from the clock on use.
std::uint64_t g_tokens = std::uint64_t(CONFIG_ICMP_ERROR_BURST) * 1000;
time::Ticks g_refilled = 0;

void set_checksum(std::byte* message, std::size_t length) {
    base::store_be16(message + 2, 0);
    base::store_be16(message + 2, ipv4::checksum_finish(ipv4::checksum_add({message, length})));
}

// Caller holds g_lock.
bool take_token() {
    time::Ticks now = time::now();
    if (g_refilled == 0) g_refilled = now;
    std::uint64_t elapsed_ms = time::to_ns(now - g_refilled) / 1'000'000;
    if (elapsed_ms) {
        g_tokens += elapsed_ms * CONFIG_ICMP_ERROR_RATE;
        std::uint64_t cap = std::uint64_t(CONFIG_ICMP_ERROR_BURST) * 1000;
        if (g_tokens > cap) g_tokens = cap;
        g_refilled = now;
    }
    if (g_tokens < 1000) return false;
    g_tokens -= 1000;
    return true;
}

// The datagram an error message quotes (RFC 792: its IP header and at
// least the first 8 bytes of its payload), if it is usable: one of ours,
// and the first fragment (only that one carries the transport header).
std::optional<ipv4::TransportError> quoted_datagram(const ipv4::Header& header, std::span<const std::byte> message) {
    if (message.size() < kHeader + ipv4::kHeaderLength + 8) return std::nullopt;
    const std::byte* ip = message.data() + kHeader;
    unsigned version = std::to_integer<unsigned>(ip[0]) >> 4;
    std::size_t ihl = (std::to_integer<std::size_t>(ip[0]) & 0xf) * 4;
    if (version != 4 || ihl < ipv4::kHeaderLength || message.size() < kHeader + ihl + 8) return std::nullopt;
    if (base::load_be16(ip + 6) & 0x1fff) return std::nullopt; // a later fragment
    ipv4::TransportError e;
    e.type = std::to_integer<std::uint8_t>(message[0]);
    e.code = std::to_integer<std::uint8_t>(message[1]);
    if (e.type == DestinationUnreachable && e.code == FragmentationNeeded)
        e.next_hop_mtu = base::load_be16(message.data() + 6); // RFC 1191 4
    e.quoted_length = base::load_be16(ip + 2);
    e.reporter = header.source;
    e.source = ipv4::Address{base::load_be32(ip + 12)};
    e.destination = ipv4::Address{base::load_be32(ip + 16)};
    if (!ipv4::is_local(e.source)) return std::nullopt;
    e.transport = message.subspan(kHeader + ihl);
    return e;
}

void handle(const ipv4::Header& header, netdev::PacketRef packet, void*) {
    std::size_t length = packet->length();
    std::byte* m = packet->bytes();
    sched::WaitQueue* wake = nullptr;
    bool is_error = false;
    // Asked before taking g_lock: ipv4's lock is never taken under ours.
    bool to_broadcast = ipv4::is_broadcast(header.destination, header.interface) || header.destination.is_multicast();
    {
        sync::MutexGuard guard(g_lock);
        ++g_stats.received;
        if (length < kHeader) { ++g_stats.truncated; return; }
        if (ipv4::checksum_finish(ipv4::checksum_add(packet->data())) != 0) { ++g_stats.bad_checksum; return; }
        switch (std::to_integer<std::uint8_t>(m[0])) {
        case EchoRequest:
            ++g_stats.echo_requests;
            if (to_broadcast) {
                ++g_stats.echo_ignored; // no smurf amplification
                return;
            }
            ++g_stats.echo_replies_sent;
            break; // answered below, unlocked
        case EchoReply: {
            std::uint16_t id = base::load_be16(m + 4), sequence = base::load_be16(m + 6);
            for (Ping& p : g_pings)
                if (p.used && !p.done.load(std::memory_order_relaxed) && p.id == id && p.sequence == sequence &&
                    p.destination == header.source) {
                    p.received = time::now();
                    p.done.store(1, std::memory_order_release);
                    wake = &p.waiters;
                }
            if (!wake) {
                ++g_stats.echo_unmatched;
                return;
            }
            ++g_stats.echo_replies;
            break;
        }
        case DestinationUnreachable: case TimeExceeded: case ParameterProblem:
            ++g_stats.errors_received;
            is_error = true;
            break; // passed on below, unlocked (ipv4's lock is never taken under ours)
        default:
            return;
        }
    }
    if (wake) {
        sched::wake_all(*wake);
        return;
    }
    if (is_error) {
        // An error about one of our datagrams: to the transport that sent it.
        // Not when it came to a broadcast address: anyone could send that.
        auto error = to_broadcast ? std::nullopt : quoted_datagram(header, packet->data());
        bool taken = error && ipv4::deliver_error(std::to_integer<std::uint8_t>(packet->data()[kHeader + 9]), *error);
        sync::MutexGuard guard(g_lock);
        ++(taken ? g_stats.errors_delivered : error ? g_stats.errors_not_taken : g_stats.errors_unusable);
        return;
    }
    // Echo reply: the same message back, type 0, from the address it was sent to.
    m[0] = std::byte{EchoReply};
    set_checksum(m, length);
    ipv4::SendOptions options;
    options.dont_fragment = false; // a reassembled big request gets a fragmented reply
    (void)ipv4::send(std::move(packet), header.destination, header.source, ipv4::Protocol::Icmp, options);
}

} // namespace

base::Result<std::uint64_t> ping(ipv4::Address destination, std::size_t payload_size, time::Ticks deadline) {
    if (payload_size > kMaxPing) return base::Error::MessageTooLong;
    Ping* slot = nullptr;
    std::uint16_t id = 0, sequence = 0;
    {
        sync::MutexGuard guard(g_lock);
        for (Ping& p : g_pings)
            if (!p.used) { slot = &p; break; }
        if (!slot) return base::Error::Busy;
        id = static_cast<std::uint16_t>(ipv4::random32());
        sequence = ++g_sequence;
        slot->used = true;
        slot->done.store(0, std::memory_order_relaxed);
        slot->id = id;
        slot->sequence = sequence;
        slot->destination = destination;
        ++g_stats.pings_sent;
    }
    auto finish = [&] {
        sync::MutexGuard guard(g_lock);
        slot->used = false;
    };
    auto packet = netdev::allocate();
    if (!packet.ok()) { finish(); return packet.error(); }
    std::byte* m = packet.value()->put(kHeader + payload_size);
    m[0] = std::byte{EchoRequest};
    m[1] = std::byte{0};
    base::store_be16(m + 4, id);
    base::store_be16(m + 6, sequence);
    for (std::size_t i = 0; i < payload_size; ++i) m[kHeader + i] = std::byte(i);
    set_checksum(m, kHeader + payload_size);
    slot->sent = time::now();
    if (auto r = ipv4::send(std::move(packet.value()), ipv4::Address::any(), destination, ipv4::Protocol::Icmp); !r.ok()) {
        finish();
        return r.error();
    }
    auto r = sched::wait(slot->waiters, deadline,
                         [](void* s) { return static_cast<Ping*>(s)->done.load(std::memory_order_acquire) == 0; }, slot);
    bool done = slot->done.load(std::memory_order_acquire) != 0;
    std::uint64_t rtt = done ? time::to_ns(slot->received - slot->sent) : 0;
    finish();
    if (!done) return r.ok() ? base::Error::TimedOut : r.error();
    return rtt;
}

void send_error(std::uint8_t type, std::uint8_t code, const ipv4::Header& offending, netdev::PacketRef original,
                std::uint16_t mtu) {
    // RFC 1122 3.2.2: never about an ICMP error, a broadcast/multicast, a
    // non-initial fragment or a source that is not a single host.
    bool about_error = false;
    if (offending.protocol == static_cast<std::uint8_t>(ipv4::Protocol::Icmp)) {
        std::uint8_t t = original->length() ? std::to_integer<std::uint8_t>(original->bytes()[0]) : 0;
        about_error = t != EchoRequest && t != EchoReply;
    }
    bool suppress = about_error || offending.fragment_offset != 0 || offending.destination.is_multicast() ||
                    offending.source.is_any() || offending.source.is_multicast() ||
                    ipv4::is_broadcast(offending.destination, offending.interface) ||
                    ipv4::is_broadcast(offending.source, nullptr);
    {
        sync::MutexGuard guard(g_lock);
        if (suppress) { ++g_stats.errors_suppressed; return; }
        if (!take_token()) { ++g_stats.errors_rate_limited; return; }
        ++g_stats.errors_sent;
    }
    // The message: type, code, checksum, 4 bytes (next-hop MTU for
    // FragmentationNeeded), the offending IP header (options dropped)
    // and the first 8 bytes of its payload.
    auto packet = netdev::allocate();
    if (!packet.ok()) return;
    std::size_t quoted = original->length() < 8 ? original->length() : 8;
    std::byte* m = packet.value()->put(kHeader + ipv4::kHeaderLength + quoted);
    std::memset(m, 0, kHeader);
    m[0] = std::byte{type};
    m[1] = std::byte{code};
    if (type == DestinationUnreachable && code == FragmentationNeeded) base::store_be16(m + 6, mtu);
    std::byte* h = m + kHeader;
    h[0] = std::byte{0x45};
    h[1] = std::byte{offending.tos};
    base::store_be16(h + 2, offending.total_length);
    base::store_be16(h + 4, offending.id);
    base::store_be16(h + 6, static_cast<std::uint16_t>((offending.more_fragments ? 0x2000 : 0) | offending.fragment_offset / 8));
    h[8] = std::byte{offending.ttl};
    h[9] = std::byte{offending.protocol};
    base::store_be16(h + 10, 0);
    offending.source.store(h + 12);
    offending.destination.store(h + 16);
    base::store_be16(h + 10, ipv4::checksum_finish(ipv4::checksum_add({h, ipv4::kHeaderLength})));
    std::memcpy(h + ipv4::kHeaderLength, original->bytes(), quoted);
    set_checksum(m, kHeader + ipv4::kHeaderLength + quoted);
    (void)ipv4::send(std::move(packet.value()), offending.destination, offending.source, ipv4::Protocol::Icmp);
}

Stats stats() {
    sync::MutexGuard guard(g_lock);
    return g_stats;
}

// Init step icmp.start.
base::Result<void> init_start() { return ipv4::register_protocol(ipv4::Protocol::Icmp, handle, nullptr); }

} // namespace tessera::icmp

namespace tessera::ipv4 {
// The strong definition of ipv4's hook (ipv4 has a weak no-op).
void send_icmp_error(std::uint8_t type, std::uint8_t code, const Header& offending, netdev::PacketRef original) {
    std::uint16_t mtu = offending.interface ? static_cast<std::uint16_t>(offending.interface->mtu()) : 0;
    icmp::send_error(type, code, offending, std::move(original), mtu);
}
} // namespace tessera::ipv4
