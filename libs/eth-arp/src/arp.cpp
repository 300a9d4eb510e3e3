// ARP (first step: links; resolution comes next).
#include <eth-arp/arp.hpp>

namespace tessera::eth_arp {
base::Result<void> set_address(netdev::Interface&, std::uint32_t) { return {}; }
base::Result<void> output(netdev::Interface&, std::uint32_t, netdev::PacketRef) { return base::Error::NotSupported; }
std::optional<netdev::MacAddress> lookup(const netdev::Interface&, std::uint32_t) { return std::nullopt; }
base::Result<void> add_static(netdev::Interface&, std::uint32_t, netdev::MacAddress) { return base::Error::NotSupported; }
void flush(netdev::Interface*) {}
void tick() {}
Stats stats() { return {}; }
base::Result<void> init_start() { return {}; }
} // namespace tessera::eth_arp
