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
};

// eth0, or nullptr if no device was found.
[[nodiscard]] netdev::Interface* interface();
[[nodiscard]] Stats stats();

} // namespace tessera::virtio_net
