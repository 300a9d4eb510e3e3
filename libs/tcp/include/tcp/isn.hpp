#pragma once
// Initial sequence numbers, RFC 6528: ISN = M + F(local address, local
// port, remote address, remote port, secret), M a 4-microsecond clock and
// F SipHash-2-4 keyed with a 128-bit secret drawn at start-up (from the
// device tree's /chosen/rng-seed when there is one, mixed with the time
// counters). Different 4-tuples get unrelated sequence spaces; one tuple's
// ISNs still advance with the clock (so an old incarnation's segments fall
// outside a new one's window).
//
// siphash24 is pure; isn() reads the key, which is written once by
// set_isn_key() before the stack starts. Any context.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>
#include <tcp/seq.hpp>

namespace tessera::tcp {

using SipKey = std::array<std::uint64_t, 2>;

[[nodiscard]] std::uint64_t siphash24(const SipKey& key, std::span<const std::byte> message);

void set_isn_key(const SipKey& key);
// SipHash-2-4 of `message` under that key: the secret behind ISNs and SYN
// cookies (which hash messages of different lengths, so never the same).
[[nodiscard]] std::uint64_t keyed_hash(std::span<const std::byte> message);
// `clock_us` is a microsecond clock (the engine passes time::to_ns(now)/1000).
[[nodiscard]] Seq isn(std::uint32_t local_address, std::uint16_t local_port, std::uint32_t remote_address,
                      std::uint16_t remote_port, std::uint64_t clock_us);

} // namespace tessera::tcp
