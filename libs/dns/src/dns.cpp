// DNS stub resolver.
//
// g_lock (sync::Mutex) guards the cache and counters; queries run with it
// released, each on its own udp::Socket.
#include <base/endian.hpp>
#include <cstring>
#include <dns/dns.hpp>
#include <sync/mutex.hpp>
#include <udp/udp.hpp>

namespace tessera::dns {
namespace {

constexpr std::size_t kHeader = 12;
constexpr std::size_t kMaxMessage = 512; // UDP without EDNS
constexpr std::uint16_t kTypeA = 1, kTypeCname = 5, kClassIn = 1;

struct CacheEntry {
    char name[kMaxName + 1];
    std::size_t length = 0;
    ipv4::Address address;
    time::Ticks expires = 0;
};

sync::Mutex g_lock{"dns"}; // see the top of the file
CacheEntry g_cache[CONFIG_DNS_CACHE > 0 ? CONFIG_DNS_CACHE : 1];
Stats g_stats{};

void count(std::uint64_t Stats::*field) {
    sync::MutexGuard guard(g_lock);
    ++(g_stats.*field);
}

char lower(char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c; }
bool same_name(std::string_view a, std::string_view b) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i)
        if (lower(a[i]) != lower(b[i])) return false;
    return true;
}

// Host name check (letters, digits, '-', '_', dots; labels 1..63), trailing dot dropped.
bool valid_name(std::string_view& name) {
    if (!name.empty() && name.back() == '.') name.remove_suffix(1);
    if (name.empty() || name.size() > kMaxName) return false;
    std::size_t label = 0;
    for (char c : name) {
        if (c == '.') {
            if (label == 0) return false;
            label = 0;
            continue;
        }
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok || ++label > 63) return false;
    }
    return label != 0;
}

// Decodes the name at `offset` into `out` (dotted, no trailing dot).
// `next` receives the offset after the name in place (after the first
// pointer, if any). False if it leaves the message, loops (pointers must
// go strictly backwards) or exceeds kMaxName.
bool read_name(std::span<const std::byte> m, std::size_t offset, char (&out)[kMaxName + 1], std::size_t& length,
               std::size_t& next) {
    length = 0;
    bool jumped = false;
    std::size_t limit = offset; // a pointer must target before this
    for (unsigned steps = 0; steps < 128; ++steps) {
        if (offset >= m.size()) return false;
        unsigned b = std::to_integer<unsigned>(m[offset]);
        if ((b & 0xc0) == 0xc0) {
            if (offset + 1 >= m.size()) return false;
            std::size_t target = (b & 0x3f) << 8 | std::to_integer<unsigned>(m[offset + 1]);
            if (target >= limit) return false; // forward or self: a loop or garbage
            if (!jumped) next = offset + 2;
            jumped = true;
            limit = target;
            offset = target;
            continue;
        }
        if (b & 0xc0) return false; // 0x40/0x80: extended label types unsupported
        if (b == 0) {
            if (!jumped) next = offset + 1;
            out[length] = '\0';
            return true;
        }
        if (offset + 1 + b > m.size()) return false;
        if (length + (length ? 1 : 0) + b > kMaxName) return false;
        if (length) out[length++] = '.';
        std::memcpy(out + length, m.data() + offset + 1, b);
        length += b;
        offset += 1 + b;
        if (!jumped) limit = offset; // pointers may target anything before the current label
    }
    return false;
}

std::size_t build_query(std::byte* q, std::uint16_t id, std::string_view name) {
    std::memset(q, 0, kHeader);
    base::store_be16(q, id);
    q[2] = std::byte{0x01}; // RD
    base::store_be16(q + 4, 1);        // QDCOUNT
    std::size_t i = kHeader;
    std::size_t start = 0;
    while (start <= name.size()) {
        std::size_t dot = name.find('.', start);
        if (dot == std::string_view::npos) dot = name.size();
        q[i++] = std::byte(dot - start);
        std::memcpy(q + i, name.data() + start, dot - start);
        i += dot - start;
        start = dot + 1;
    }
    q[i++] = std::byte{0};
    base::store_be16(q + i, kTypeA);
    base::store_be16(q + i + 2, kClassIn);
    return i + 4;
}

enum class Verdict { Ignore, Malformed, Answer, NxDomain, ServerError, Truncated, NoRecord };

// Validates a response; on Answer fills address and ttl.
Verdict check(std::span<const std::byte> m, std::uint16_t id, std::string_view name, ipv4::Address& address,
              std::uint32_t& ttl) {
    if (m.size() < kHeader) return Verdict::Malformed;
    if (base::load_be16(m.data()) != id) return Verdict::Ignore;
    unsigned flags = base::load_be16(m.data() + 2);
    if (!(flags & 0x8000) || ((flags >> 11) & 0xf) != 0) return Verdict::Ignore; // not a response / opcode
    if (base::load_be16(m.data() + 4) != 1) return Verdict::Malformed;
    char decoded[kMaxName + 1];
    std::size_t length = 0, next = 0;
    if (!read_name(m, kHeader, decoded, length, next) || next + 4 > m.size()) return Verdict::Malformed;
    if (!same_name({decoded, length}, name) || base::load_be16(m.data() + next) != kTypeA || base::load_be16(m.data() + next + 2) != kClassIn)
        return Verdict::Ignore; // an answer to some other question
    if (flags & 0x0200) return Verdict::Truncated;
    unsigned rcode = flags & 0xf;
    if (rcode == 3) return Verdict::NxDomain;
    if (rcode != 0) return Verdict::ServerError;
    // Answers: follow CNAMEs from the question name.
    char owner[kMaxName + 1];
    char target[kMaxName + 1];
    std::size_t target_length = name.size();
    std::memcpy(target, name.data(), name.size());
    std::size_t offset = next + 4;
    unsigned answers = base::load_be16(m.data() + 6);
    bool found = false;
    std::uint32_t min_ttl = ~0u;
    for (unsigned a = 0; a < answers; ++a) {
        std::size_t owner_length = 0;
        if (!read_name(m, offset, owner, owner_length, offset) || offset + 10 > m.size()) return Verdict::Malformed;
        std::uint16_t type = base::load_be16(m.data() + offset), klass = base::load_be16(m.data() + offset + 2);
        std::uint32_t record_ttl = base::load_be32(m.data() + offset + 4);
        std::size_t rdlength = base::load_be16(m.data() + offset + 8);
        std::size_t rdata = offset + 10;
        if (rdata + rdlength > m.size()) return Verdict::Malformed;
        offset = rdata + rdlength;
        if (klass != kClassIn || !same_name({owner, owner_length}, {target, target_length})) continue;
        if (record_ttl & 0x80000000u) record_ttl = 0; // RFC 2181 8: top bit set means zero
        if (type == kTypeCname) {
            std::size_t unused = 0;
            if (!read_name(m, rdata, target, target_length, unused)) return Verdict::Malformed;
            if (record_ttl < min_ttl) min_ttl = record_ttl;
        } else if (type == kTypeA && rdlength == 4 && !found) {
            address = ipv4::Address::load(m.data() + rdata);
            if (record_ttl < min_ttl) min_ttl = record_ttl;
            found = true;
        }
    }
    if (!found) return Verdict::NoRecord;
    ttl = min_ttl;
    return Verdict::Answer;
}

std::optional<ipv4::Address> cached(std::string_view name) {
    if (CONFIG_DNS_CACHE == 0) return std::nullopt;
    sync::MutexGuard guard(g_lock);
    time::Ticks now = time::now();
    for (CacheEntry& e : g_cache)
        if (e.length && now < e.expires && same_name({e.name, e.length}, name)) {
            ++g_stats.cache_hits;
            return e.address;
        }
    return std::nullopt;
}

void remember(std::string_view name, ipv4::Address address, std::uint32_t ttl) {
    if (CONFIG_DNS_CACHE == 0 || ttl == 0) return;
    if (ttl > CONFIG_DNS_MAX_TTL) ttl = CONFIG_DNS_MAX_TTL;
    sync::MutexGuard guard(g_lock);
    time::Ticks now = time::now();
    CacheEntry* slot = &g_cache[0];
    for (CacheEntry& e : g_cache) {
        if (e.length && same_name({e.name, e.length}, name)) { slot = &e; break; }
        if (e.expires < slot->expires || now >= e.expires) slot = &e; // expired or soonest to expire
    }
    std::memcpy(slot->name, name.data(), name.size());
    slot->length = name.size();
    slot->address = address;
    slot->expires = now + time::from_ns(std::uint64_t(ttl) * 1'000'000'000);
}

} // namespace

base::Result<ipv4::Address> resolve_with(ipv4::Address server, std::string_view name, time::Ticks deadline,
                                         std::uint16_t port) {
    if (!valid_name(name) || port == 0) return base::Error::InvalidArgument;
    std::byte query[kMaxMessage];         // on the caller's stack: resolvers may run concurrently
    std::byte response[kMaxMessage + 1];
    std::size_t length = 0;
    base::Error last = base::Error::TimedOut;
    for (unsigned attempt = 0; attempt < CONFIG_DNS_ATTEMPTS; ++attempt) {
        time::Ticks now = time::now();
        if (now >= deadline) break;
        // A fresh random port and id per attempt (RFC 5452).
        udp::Socket socket;
        for (unsigned tries = 0; tries < 8 && !socket.bound(); ++tries)
            (void)socket.bind(static_cast<std::uint16_t>(udp::kEphemeralFirst + ipv4::random32() % (65536 - udp::kEphemeralFirst)));
        if (!socket.bound()) TRY(socket.bind(0));
        std::uint16_t id = static_cast<std::uint16_t>(ipv4::random32());
        length = build_query(query, id, name);
        TRY(socket.send_to(server, port, {query, length}));
        count(&Stats::queries);
        time::Ticks until = now + time::from_ns(std::uint64_t(CONFIG_DNS_TIMEOUT_MS) * 1'000'000);
        if (until > deadline) until = deadline;
        for (;;) {
            auto d = socket.receive_from(response, until);
            if (!d.ok()) break;
            if (d->source != server || d->source_port != port) { count(&Stats::mismatched); continue; }
            if (d->truncated) { count(&Stats::malformed); continue; } // over 512 bytes without EDNS: not DNS over UDP
            ipv4::Address address;
            std::uint32_t ttl = 0;
            switch (check({response, d->length}, id, name, address, ttl)) {
            case Verdict::Ignore: count(&Stats::mismatched); continue;
            case Verdict::Malformed: count(&Stats::malformed); continue;
            case Verdict::Truncated: count(&Stats::truncated); return base::Error::MessageTooLong;
            case Verdict::NxDomain: count(&Stats::nxdomain); return base::Error::NotFound;
            case Verdict::NoRecord: count(&Stats::answers); return base::Error::NotFound;
            case Verdict::ServerError: count(&Stats::server_errors); last = base::Error::Unavailable; break;
            case Verdict::Answer:
                count(&Stats::answers);
                remember(name, address, ttl);
                return address;
            }
            break; // server error: next attempt
        }
        if (last == base::Error::TimedOut) count(&Stats::timeouts);
    }
    return last;
}

base::Result<ipv4::Address> resolve(std::string_view name, time::Ticks deadline) {
    if (!valid_name(name)) return base::Error::InvalidArgument;
    if (auto a = ipv4::parse(name)) return *a; // a literal address
    if (auto a = cached(name)) return *a;
    auto server = ipv4::dns_server();
    if (!server) return base::Error::Unavailable;
    return resolve_with(*server, name, deadline);
}

void flush_cache() {
    sync::MutexGuard guard(g_lock);
    for (CacheEntry& e : g_cache) e.length = 0;
}

Stats stats() {
    sync::MutexGuard guard(g_lock);
    return g_stats;
}

} // namespace tessera::dns
