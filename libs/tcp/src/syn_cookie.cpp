// SYN cookies: the encoding described in tcp/syn_cookie.hpp.
#include <algorithm>
#include <cstring>
#include <tcp/segment.hpp>
#include <tcp/isn.hpp>
#include <tcp/syn_cookie.hpp>

namespace tessera::tcp {

namespace {
constexpr unsigned kPeriodShift = 27, kMssShift = 24;
constexpr std::uint32_t kHashMask = (1u << kMssShift) - 1;
constexpr std::uint32_t kTsMask = 0x1f;      // TSval bits that carry options
constexpr std::uint32_t kTsNoScale = 0xf;    // in the scale bits: none offered
constexpr std::uint32_t kTsSack = 0x10;

// The MSS index is hashed too: a forger cannot change it in a valid cookie.
std::uint32_t cookie_hash(const CookieTuple& t, Seq peer_isn, std::uint32_t period, std::uint32_t mss_index) {
    // 21 bytes: a length of its own, so never the same message as an ISN's.
    std::byte m[21];
    std::memcpy(m, &t.local_address, 4);
    std::memcpy(m + 4, &t.remote_address, 4);
    std::memcpy(m + 8, &t.local_port, 2);
    std::memcpy(m + 10, &t.remote_port, 2);
    const std::uint32_t isn = peer_isn.value();
    std::memcpy(m + 12, &isn, 4);
    std::memcpy(m + 16, &period, 4);
    m[20] = static_cast<std::byte>(mss_index);
    return static_cast<std::uint32_t>(keyed_hash(m)) & kHashMask;
}
} // namespace

Seq make_syn_cookie(const CookieTuple& t, Seq peer_isn, std::uint16_t peer_mss, std::uint32_t period) {
    if (peer_mss == 0) peer_mss = 536; // RFC 9293 3.7.1's default
    std::uint32_t index = 0;
    for (std::uint32_t i = 0; i < kCookieMss.size(); ++i)
        if (kCookieMss[i] <= peer_mss) index = i;
    return Seq((period << kPeriodShift) | (index << kMssShift) | cookie_hash(t, peer_isn, period, index));
}

std::optional<std::uint16_t> check_syn_cookie(const CookieTuple& t, Seq peer_isn, Seq cookie, std::uint32_t period) {
    const std::uint32_t c = cookie.value();
    const std::uint32_t age = (period - (c >> kPeriodShift)) & 31;
    if (age > 1) return std::nullopt; // older than the last period, or from the future
    const std::uint32_t made_in = period - age;
    const std::uint32_t index = (c >> kMssShift) & 7;
    if ((c & kHashMask) != cookie_hash(t, peer_isn, made_in, index)) return std::nullopt;
    return kCookieMss[index];
}

std::uint32_t cookie_timestamp(std::uint32_t now_ms, const CookieOptions& o) {
    std::uint32_t bits = o.has_window_scale ? std::min<std::uint32_t>(o.window_scale, kMaxWindowScale) : kTsNoScale;
    if (o.sack_permitted) bits |= kTsSack;
    std::uint32_t ts = (now_ms & ~kTsMask) | bits;
    if (static_cast<std::int32_t>(ts - now_ms) > 0) ts -= kTsMask + 1; // never ahead of the clock
    return ts;
}

CookieOptions decode_cookie_timestamp(std::uint32_t echoed) {
    CookieOptions o;
    const std::uint32_t scale = echoed & 0xf;
    o.has_window_scale = scale <= kMaxWindowScale;
    o.window_scale = o.has_window_scale ? static_cast<std::uint8_t>(scale) : 0;
    o.sack_permitted = echoed & kTsSack;
    return o;
}

} // namespace tessera::tcp
