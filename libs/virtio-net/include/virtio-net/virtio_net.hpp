#pragma once
// The virtio-net driver (virtio 1.1, section 5.1). At boot (init step
// virtio_net.probe) it claims the first modern virtio-net device and
// registers it with netdev as "eth0"; without one it logs and does nothing.
// Everything else goes through netdev::Interface.
//
// Receive: the RX queue is kept full of netdev pool buffers; the device
// interrupt pops used buffers, strips the 12-byte virtio_net_hdr, hands the
// frames to netdev::receive() and re-posts fresh buffers (from the pool:
// IRQ-safe, never blocking). When the pool is empty the ring runs short and
// the network thread refills it (DriverOps::poll). Transmit: the header is
// pushed into the packet's headroom, so one descriptor carries a frame;
// buffers go back to the pool from the completion interrupt.
//
// Receive polling (CONFIG_VIRTIO_NET_RX_POLL_US, set_rx_poll_window_us):
// a receive interrupt that brings frames turns the RX queue's interrupts
// off; from then on the hart that takes the device's interrupt watches the
// ring from its idle thread (sched::add_idle_poll) and hands frames over
// as they come, until the ring stays quiet for the window; then interrupts
// are back on. A hart that finds no idle moment for 1 ms is covered by a
// watchdog callout, which takes what is waiting (or, with nothing there,
// turns interrupts back on): that bounds how long a frame can wait while
// threads keep the hart busy. While traffic flows there are no interrupts at all: under
// QEMU each one waits for the big lock, which the main loop holds for
// whole turns of SLIRP or the TAP back end (docs/libs/virtio-net.md). The
// poll only ever uses time no thread wants.
//
// SMP-safe (queue locks); interrupts go to the boot hart (plat/irq.hpp).
#include <cstdint>
#include <netdev/interface.hpp>

namespace tessera::virtio_net {

struct Stats {
    std::uint64_t interrupts;
    std::uint64_t rx_completions;   // used RX buffers popped
    std::uint64_t rx_refill_failures; // pool empty when re-posting
    std::uint64_t tx_completions;   // used TX buffers recycled
    std::uint32_t rx_posted;        // RX buffers the device holds now
    std::uint32_t rx_ring;          // ... and how many it should (the RX queue size)
    std::uint32_t tx_in_flight;     // TX frames the device holds now
    std::uint64_t rx_notifications, tx_notifications; // QueueNotify writes (each a trap into QEMU)
    std::uint64_t features;         // negotiated
    std::uint64_t rx_polled;        // frames taken while polling (the idle poll or its watchdog), not signalled
    std::uint64_t rx_poll_periods;  // times the RX interrupts were turned off for polling
    std::uint64_t rx_poll_starved;  // watchdog firings that found the hart with no idle moment for 1 ms
    std::uint32_t rx_poll_window_us; // 0: never poll
    bool rx_polling;                // interrupts off, the idle poll watching now
};

// eth0, or nullptr if no device was found.
[[nodiscard]] netdev::Interface* interface();
[[nodiscard]] Stats stats();

// How long the idle poll keeps watching the receive ring after the last
// frame before interrupts are back on; 0 stops polling (at the hart's next
// idle moment). Starts at CONFIG_VIRTIO_NET_RX_POLL_US. Any thread.
void set_rx_poll_window_us(std::uint32_t us);

} // namespace tessera::virtio_net
