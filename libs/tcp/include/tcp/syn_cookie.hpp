#pragma once
// SYN cookies (RFC 4987 3.6): a listener whose SYN queue is full (or whose
// share of it for the SYN's source is) answers a SYN with a SYN-ACK whose
// sequence number encodes the handshake, and keeps nothing. The peer's
// ACK of it carries the cookie back (ACK - 1), and a valid one rebuilds
// the connection. A flood of SYNs that are never completed then costs the
// listener frames, not slots: legitimate clients still get in.
//
// The cookie's 32 bits:
//   31..27  the period it was made in (time / 64 s), modulo 32
//   26..24  an index into kCookieMss, the largest entry not above the
//           peer's MSS
//   23..0   SipHash-2-4 (the ISN secret) of the four-tuple, the peer's
//           ISN, the full period and the MSS index
// A cookie is valid in its own period and the next (64 to 128 s); a blind
// forger has one chance in 2^24 per guess.
//
// The other SYN options have no room there. When the peer offered
// timestamps, the low five bits of the SYN-ACK's TSval carry its window
// scale and SACK-permitted (the TSval is moved back by under 32 ms so that
// the connection's timestamps still never go backwards); its ACK echoes
// them in TSecr. Without timestamps a cookie connection has no window
// scaling and no SACK, as with Linux.
//
// Pure functions of their arguments and the ISN secret: any context.
#include <array>
#include <cstdint>
#include <optional>
#include <tcp/seq.hpp>

namespace tessera::tcp {

inline constexpr std::uint32_t kCookiePeriodSeconds = 64;
inline constexpr std::array<std::uint16_t, 8> kCookieMss{64, 256, 536, 1200, 1360, 1400, 1440, 1460};

struct CookieTuple {
    std::uint32_t local_address = 0, remote_address = 0;
    std::uint16_t local_port = 0, remote_port = 0;
};

[[nodiscard]] constexpr std::uint32_t cookie_period(std::uint64_t now_ns) {
    return static_cast<std::uint32_t>(now_ns / (kCookiePeriodSeconds * 1'000'000'000ull));
}

// The sequence number of a stateless SYN-ACK to a SYN with `peer_isn` and
// MSS option `peer_mss` (0: absent).
[[nodiscard]] Seq make_syn_cookie(const CookieTuple& t, Seq peer_isn, std::uint16_t peer_mss, std::uint32_t period);

// The MSS `cookie` carries if it is one make_syn_cookie() gave this
// handshake in `period` or the one before; nullopt otherwise.
[[nodiscard]] std::optional<std::uint16_t> check_syn_cookie(const CookieTuple& t, Seq peer_isn, Seq cookie,
                                                            std::uint32_t period);

// SYN options that ride in the SYN-ACK's timestamp.
struct CookieOptions {
    bool has_window_scale = false;
    std::uint8_t window_scale = 0; // the peer's shift, 0..14
    bool sack_permitted = false;
};

// A TSval at most `now_ms` and within 32 ms of it, carrying `o`.
[[nodiscard]] std::uint32_t cookie_timestamp(std::uint32_t now_ms, const CookieOptions& o);
// What an echoed cookie_timestamp() carries.
[[nodiscard]] CookieOptions decode_cookie_timestamp(std::uint32_t echoed);

} // namespace tessera::tcp
