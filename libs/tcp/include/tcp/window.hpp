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

// Whether reading from the ring opened the window enough to tell the peer.
[[nodiscard]] constexpr bool window_update_due(std::uint32_t space, std::uint32_t offered, std::uint8_t scale,
                                               std::uint32_t mss, std::uint32_t buffer) {
    return window_to_offer(space, offered, scale, mss, buffer) != offered;
}

} // namespace tessera::tcp
