#pragma once
// The receive window we offer (RFC 9293 3.8.6.2.2 receiver SWS avoidance,
// RFC 7323 2 window scaling), as pure functions of the ring's free space,
// the window last offered, the scale, the MSS and the ring's size.
//
// The window field is 16 bits shifted by the scale, so with no scaling
// (a peer such as QEMU's SLIRP does not offer it) at most 65,535 bytes can
// be offered however large the ring is. A window update that cannot show
// more than was offered is a pure ACK identical to the last one: the peer
// counts it as a duplicate ACK, and three in a row make it retransmit a
// segment that was never lost and halve its congestion window. So every
// decision goes by what the field can carry, not by the free space.
//
// Pure values: SMP-safe, usable in any context.
#include <algorithm>
#include <cstdint>

namespace tessera::tcp {

// The most of `space` a window field scaled by `scale` can offer.
[[nodiscard]] constexpr std::uint32_t representable_window(std::uint32_t space, std::uint8_t scale) {
    return std::min(space, 65535u << scale) >> scale << scale;
}

// The window to offer now, given `offered` (what is left of the last one:
// it is never taken back). It grows only by at least min(buffer / 2, mss).
[[nodiscard]] constexpr std::uint32_t window_to_offer(std::uint32_t space, std::uint32_t offered,
                                                      std::uint8_t scale, std::uint32_t mss,
                                                      std::uint32_t buffer) {
    std::uint32_t w = representable_window(space, scale);
    if (w <= offered || w - offered < std::min(buffer / 2, mss)) return offered;
    return w;
}

// Whether reading from the ring opened the window enough to tell the peer
// with an ACK of its own. Only once what is left of the offer is at most
// half the most we can offer, and then if the new window is at least
// twice what is left (Linux's rule, tcp_cleanup_rbuf()): before that the
// sender is not held up, and the ACKs that data earns carry the window
// anyway. An update per read would cost both ends a segment each time.
[[nodiscard]] constexpr bool window_update_due(std::uint32_t space, std::uint32_t offered, std::uint8_t scale,
                                               std::uint32_t mss, std::uint32_t buffer) {
    if (2 * static_cast<std::uint64_t>(offered) > representable_window(buffer, scale)) return false;
    std::uint32_t w = window_to_offer(space, offered, scale, mss, buffer);
    return w != offered && w >= 2 * static_cast<std::uint64_t>(offered);
}

} // namespace tessera::tcp
