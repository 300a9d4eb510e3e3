#include <atomic>
#include <cstring>
#include <dns/dns.hpp>
#include <ipv4/test_peer.hpp>
#include <ktest/ktest.hpp>
#include <sched/sched.hpp>

using namespace tessera;
using base::Error;
using ipv4::Address;
using ipv4::TestPeer;

namespace {

constexpr Address kAnswer = Address::from(10, 20, 30, 40);

struct Query {
    std::uint16_t id = 0, port = 0;
    std::size_t length = 0;
    std::byte bytes[512];
};

bool next_query(TestPeer& peer, Query& q, std::uint64_t ms = 2000, std::uint16_t server_port = 53) {
    TestPeer::Frame f;
    while (peer.next_of(f, 0x0800, TestPeer::in_ms(ms))) {
        if (f.protocol() != 17) continue;
        const std::byte* u = f.l4();
        if ((unsigned(u[2]) << 8 | unsigned(u[3])) != server_port) continue;
        q.port = static_cast<std::uint16_t>(unsigned(u[0]) << 8 | unsigned(u[1]));
        q.length = f.l4_length() - 8;
        std::memcpy(q.bytes, u + 8, q.length);
        q.id = static_cast<std::uint16_t>(unsigned(q.bytes[0]) << 8 | unsigned(q.bytes[1]));
        return true;
    }
    return false;
}

// Response = the query (header + question) with flags/counts set, then `answer` bytes.
void respond(TestPeer& peer, const Query& q, unsigned rcode, unsigned answers, const std::byte* answer, std::size_t n,
             std::uint16_t id_xor = 0, bool truncated = false, std::uint16_t server_port = 53) {
    static std::byte m[600];
    std::memcpy(m, q.bytes, q.length);
    m[0] ^= std::byte(id_xor >> 8);
    m[1] ^= std::byte(id_xor);
    m[2] = std::byte(0x81 | (truncated ? 0x02 : 0));
    m[3] = std::byte(0x80 | rcode);
    m[6] = std::byte{0};
    m[7] = std::byte(answers);
    if (n) std::memcpy(m + q.length, answer, n); // answer may be null when n is 0
    peer.send_udp(server_port, q.port, m, q.length + n);
}

// An A record for the question name (pointer to offset 12), TTL, address.
std::size_t a_record(std::byte* r, std::uint32_t ttl, Address a, std::uint16_t name_pointer = 12) {
    const unsigned char rec[] = {static_cast<unsigned char>(0xc0 | name_pointer >> 8), static_cast<unsigned char>(name_pointer),
                                 0, 1, 0, 1, static_cast<unsigned char>(ttl >> 24), static_cast<unsigned char>(ttl >> 16),
                                 static_cast<unsigned char>(ttl >> 8), static_cast<unsigned char>(ttl), 0, 4};
    std::memcpy(r, rec, sizeof(rec));
    a.store(r + sizeof(rec));
    return sizeof(rec) + 4;
}

struct Resolution {
    const char* name;
    base::Result<Address> result{Error::NotFound};
    sched::ThreadHandle thread{};
};

void start(Resolution& r, std::uint64_t ms = 3000) {
    auto t = sched::spawn([](void* a) {
        auto& res = *static_cast<Resolution*>(a);
        res.result = dns::resolve(res.name, TestPeer::in_ms(3000));
    }, &r, {.name = "resolver"});
    VERIFY(t.ok());
    r.thread = t.value();
    (void)ms;
}

struct Setup {
    TestPeer peer;
    bool ok = false;
    Setup() {
        ok = peer.attach().ok();
        ipv4::set_dns_server(TestPeer::kPeer);
        dns::flush_cache();
    }
    ~Setup() { ipv4::set_dns_server(Address::any()); dns::flush_cache(); }
};

} // namespace

KTEST(dns, resolves_with_compression_and_caches_for_ttl) {
    Setup s;
    ASSERT_TRUE(s.ok);
    Resolution r{"Host.Example.TEST"};
    start(r);
    Query q;
    ASSERT_TRUE(next_query(s.peer, q));
    EXPECT_GE(q.port, 49152u);
    // Question encoding: 4Host7Example4TEST0, type A, class IN.
    EXPECT_EQ(q.length, 12u + 19 + 4);
    EXPECT_EQ(unsigned(q.bytes[12]), 4u);
    EXPECT_EQ(std::memcmp(q.bytes + 13, "Host", 4), 0);
    // A wrong id and a response from the wrong port are ignored.
    std::byte rec[32];
    std::size_t n = a_record(rec, 1, kAnswer);
    respond(s.peer, q, 0, 1, rec, n, 0x0101);
    respond(s.peer, q, 0, 1, rec, n);
    ASSERT_OK(sched::join(r.thread));
    ASSERT_OK(r.result);
    EXPECT_EQ(r.result.value(), kAnswer);
    EXPECT_GE(dns::stats().mismatched, 1u);
    // Cached (any case), no query sent; gone after the 1 s TTL.
    auto hits = dns::stats().cache_hits;
    auto again = dns::resolve("host.example.test", TestPeer::in_ms(100));
    ASSERT_OK(again);
    EXPECT_EQ(dns::stats().cache_hits, hits + 1);
    sched::sleep_for_ns(1'100'000'000);
    Resolution r2{"host.example.test"};
    start(r2);
    ASSERT_TRUE(next_query(s.peer, q));
    // Answer through a CNAME: www -> (pointer) ...
    respond(s.peer, q, 3, 0, nullptr, 0);
    ASSERT_OK(sched::join(r2.thread));
    EXPECT_ERROR(r2.result, Error::NotFound); // NXDOMAIN
    EXPECT_ERROR(dns::resolve("bad..name", TestPeer::in_ms(10)), Error::InvalidArgument);
    EXPECT_EQ(dns::resolve("10.0.2.2", TestPeer::in_ms(10)).value(), Address::from(10, 0, 2, 2));
}

KTEST(dns, cname_chain_followed) {
    Setup s;
    ASSERT_TRUE(s.ok);
    Resolution r{"www.a.test"};
    start(r);
    Query q;
    ASSERT_TRUE(next_query(s.peer, q));
    // www.a.test CNAME b.a.test (label b + pointer to "a.test" at 16); b.a.test A.
    std::byte rec[64];
    const unsigned char cname[] = {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, 'b', 0xc0, 16};
    std::memcpy(rec, cname, sizeof(cname));
    std::size_t n = sizeof(cname);
    n += a_record(rec + n, 60, kAnswer, static_cast<std::uint16_t>(q.length + 12));
    respond(s.peer, q, 0, 2, rec, n);
    ASSERT_OK(sched::join(r.thread));
    ASSERT_OK(r.result);
    EXPECT_EQ(r.result.value(), kAnswer);
}

KTEST(dns, malformed_responses_ignored_then_retry_and_timeout) {
    Setup s;
    ASSERT_TRUE(s.ok);
    auto before = dns::stats();
    Resolution r{"loop.test"};
    start(r);
    Query q;
    ASSERT_TRUE(next_query(s.peer, q));
    // A compression pointer to itself, a forward pointer, an rdlength past the end.
    std::byte rec[32];
    std::size_t at = q.length;
    const unsigned char self[] = {static_cast<unsigned char>(0xc0 | at >> 8), static_cast<unsigned char>(at), 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4};
    std::memcpy(rec, self, sizeof(self));
    respond(s.peer, q, 0, 1, rec, sizeof(self));
    const unsigned char forward[] = {0xc0, 0xff, 0, 1, 0, 1, 0, 0, 0, 9, 0, 4, 1, 2, 3, 4};
    std::memcpy(rec, forward, sizeof(forward));
    respond(s.peer, q, 0, 1, rec, sizeof(forward));
    std::size_t n = a_record(rec, 9, kAnswer);
    rec[11] = std::byte{40};
    respond(s.peer, q, 0, 1, rec, n);
    // No valid answer: the resolver asks again, with a new id.
    Query q2;
    ASSERT_TRUE(next_query(s.peer, q2, 4000));
    EXPECT_NE(q2.id, q.id);
    n = a_record(rec, 9, kAnswer);
    respond(s.peer, q2, 0, 1, rec, n, 0, true); // truncated
    ASSERT_OK(sched::join(r.thread));
    EXPECT_ERROR(r.result, Error::MessageTooLong);
    auto after = dns::stats();
    EXPECT_EQ(after.malformed, before.malformed + 3);
    EXPECT_EQ(after.truncated, before.truncated + 1);
    EXPECT_GE(after.timeouts, before.timeouts + 1);
    // Nobody answers at all: TimedOut after the attempts.
    auto t0 = time::now();
    EXPECT_ERROR(dns::resolve("silent.test", time::now() + time::from_ns(60'000'000'000ull)), Error::TimedOut);
    EXPECT_GE(time::to_ns(time::now() - t0), std::uint64_t(CONFIG_DNS_TIMEOUT_MS) * CONFIG_DNS_ATTEMPTS * 1'000'000 * 9 / 10);
    ipv4::set_dns_server(Address::any());
    EXPECT_ERROR(dns::resolve("x.test", TestPeer::in_ms(10)), Error::Unavailable);
}

KTEST(dns, resolve_with_a_server_port_other_than_53) {
    // A server on another port (a test's resolver behind SLIRP's host
    // alias): the query goes there, and only answers from that port count.
    Setup s;
    ASSERT_TRUE(s.ok);
    struct Call {
        base::Result<Address> result{Error::NotFound};
    } call;
    auto t = sched::spawn([](void* a) {
        static_cast<Call*>(a)->result = dns::resolve_with(TestPeer::kPeer, "alt.port.test", TestPeer::in_ms(3000), 5353);
    }, &call, {.name = "resolver"});
    ASSERT_OK(t);
    Query q;
    ASSERT_TRUE(next_query(s.peer, q, 2000, 5353));
    auto before = dns::stats();
    std::byte rec[32];
    std::size_t n = a_record(rec, 30, kAnswer);
    respond(s.peer, q, 0, 1, rec, n, 0, false, 53); // right id, wrong port
    respond(s.peer, q, 0, 1, rec, n, 0, false, 5353);
    ASSERT_OK(sched::join(t.value()));
    ASSERT_OK(call.result);
    EXPECT_EQ(call.result.value(), kAnswer);
    EXPECT_EQ(dns::stats().mismatched, before.mismatched + 1);
    // The answer is cached like any other.
    EXPECT_EQ(dns::resolve("alt.port.test", TestPeer::in_ms(10)).value(), kAnswer);
    EXPECT_ERROR(dns::resolve_with(TestPeer::kPeer, "x.test", TestPeer::in_ms(10), 0), Error::InvalidArgument);
}

namespace {
struct FuzzResolution {
    base::Result<Address> result{Error::NotFound};
    std::atomic<std::uint32_t> done{0};
};
} // namespace

KTEST(dns, survives_random_corruption_of_answers) {
    // Mutants of a valid answer (a CNAME then an A record, both with
    // compression pointers): bytes overwritten past the id, some with
    // the id too, some cut short. Each resolution gets a batch, then the
    // valid answer if it is still waiting. No crash, no hang, and the
    // pool is back where it started.
    Setup s;
    ASSERT_TRUE(s.ok);
    ktest::Random random(0x5eed0d25ull);
    const auto pool = TestPeer::settled_pool_free();
    unsigned mutants = 0, answered = 0;
    static std::byte valid[600], mutant[600];
    for (unsigned round = 0; round < 250; ++round) {
        dns::flush_cache();
        s.peer.clear();
        static FuzzResolution r;
        r.done.store(0);
        auto t = sched::spawn([](void*) {
            r.result = dns::resolve("www.a.test", TestPeer::in_ms(20000));
            r.done.store(1, std::memory_order_release);
        }, nullptr, {.name = "resolver"});
        ASSERT_OK(t);
        Query q;
        ASSERT_TRUE(next_query(s.peer, q));
        // The valid response, as respond() would build it.
        const unsigned char cname[] = {0xc0, 12, 0, 5, 0, 1, 0, 0, 0, 60, 0, 4, 1, 'b', 0xc0, 16};
        std::size_t n = q.length;
        std::memcpy(valid, q.bytes, n);
        valid[2] = std::byte{0x81};
        valid[3] = std::byte{0x80};
        valid[6] = std::byte{0};
        valid[7] = std::byte{2};
        std::memcpy(valid + n, cname, sizeof(cname));
        n += sizeof(cname);
        n += a_record(valid + n, 60, kAnswer, static_cast<std::uint16_t>(q.length + 12));
        for (unsigned k = 0; k < 30 && !r.done.load(std::memory_order_acquire); ++k, ++mutants) {
            std::memcpy(mutant, valid, n);
            std::size_t length = n;
            std::size_t from = random.next() % 8 == 0 ? 0 : 2;
            for (unsigned f = 0, flips = 1 + random.next() % 6; f < flips; ++f) {
                std::size_t at = from + random.next() % (n - from);
                mutant[at] = (random.next() & 1) ? std::byte(random.next()) : std::byte{0xc0};
            }
            if (random.next() % 4 == 0) length = random.next() % (n + 1);
            if (random.next() % 16 == 0) length = n + random.next() % (sizeof(mutant) - n); // trailing garbage
            s.peer.send_udp(53, q.port, mutant, length);
        }
        // Still waiting (or asking again after a mutant looked like
        // SERVFAIL): the valid answer to its latest query.
        for (unsigned tries = 0; !r.done.load(std::memory_order_acquire) && tries < 10; ++tries) {
            s.peer.send_udp(53, q.port, valid, n);
            Query again;
            if (!r.done.load(std::memory_order_acquire) && next_query(s.peer, again, 200)) {
                q = again;
                std::memcpy(valid, q.bytes, 2); // its id
            }
        }
        ASSERT_OK(sched::join(t.value()));
        if (r.result.ok()) ++answered;
    }
    EXPECT_GE(mutants, 2000u);
    EXPECT_GT(answered, 0u);
    EXPECT_EQ(TestPeer::settled_pool_free(), pool);
}
