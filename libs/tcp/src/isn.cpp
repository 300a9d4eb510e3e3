// SipHash-2-4 (Aumasson and Bernstein, 2012) and the RFC 6528 ISN.
#include <bit>
#include <cstring>
#include <tcp/isn.hpp>

namespace tessera::tcp {

namespace {
constinit SipKey g_key = {0x736f6d6570736575ull, 0x646f72616e646f6dull}; // replaced at start-up

struct SipState {
    std::uint64_t v0, v1, v2, v3;
    void round() {
        v0 += v1; v1 = std::rotl(v1, 13); v1 ^= v0; v0 = std::rotl(v0, 32);
        v2 += v3; v3 = std::rotl(v3, 16); v3 ^= v2;
        v0 += v3; v3 = std::rotl(v3, 21); v3 ^= v0;
        v2 += v1; v1 = std::rotl(v1, 17); v1 ^= v2; v2 = std::rotl(v2, 32);
    }
    void absorb(std::uint64_t m) {
        v3 ^= m;
        round(); round();
        v0 ^= m;
    }
};

std::uint64_t load_le64(const std::byte* p) {
    std::uint64_t v = 0;
    for (int i = 7; i >= 0; --i) v = v << 8 | static_cast<std::uint8_t>(p[i]);
    return v;
}
} // namespace

std::uint64_t siphash24(const SipKey& key, std::span<const std::byte> message) {
    SipState s{key[0] ^ 0x736f6d6570736575ull, key[1] ^ 0x646f72616e646f6dull, key[0] ^ 0x6c7967656e657261ull,
               key[1] ^ 0x7465646279746573ull};
    std::size_t n = message.size();
    std::size_t i = 0;
    for (; i + 8 <= n; i += 8) s.absorb(load_le64(message.data() + i));
    std::uint64_t last = static_cast<std::uint64_t>(n & 0xff) << 56;
    for (std::size_t j = 0; i + j < n; ++j) last |= static_cast<std::uint64_t>(static_cast<std::uint8_t>(message[i + j])) << (8 * j);
    s.absorb(last);
    s.v2 ^= 0xff;
    s.round(); s.round(); s.round(); s.round();
    return s.v0 ^ s.v1 ^ s.v2 ^ s.v3;
}

void set_isn_key(const SipKey& key) { g_key = key; }

std::uint64_t keyed_hash(std::span<const std::byte> message) { return siphash24(g_key, message); }

Seq isn(std::uint32_t local_address, std::uint16_t local_port, std::uint32_t remote_address,
        std::uint16_t remote_port, std::uint64_t clock_us) {
    std::byte m[12];
    std::memcpy(m, &local_address, 4);
    std::memcpy(m + 4, &remote_address, 4);
    std::memcpy(m + 8, &local_port, 2);
    std::memcpy(m + 10, &remote_port, 2);
    auto f = static_cast<std::uint32_t>(keyed_hash(m));
    return Seq(static_cast<std::uint32_t>(clock_us / 4) + f); // M ticks every 4 us (RFC 6528 3)
}

} // namespace tessera::tcp
