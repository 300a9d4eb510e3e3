// IPv4: configuration, routes, output, input. (First step: the API links;
// send and input come next.)
#include <ipv4/ipv4.hpp>
#include <sync/mutex.hpp>

namespace tessera::ipv4 {

base::Result<void> configure(netdev::Interface&, Address, unsigned) { return base::Error::NotSupported; }
base::Result<void> set_default_gateway(Address) { return base::Error::NotSupported; }
base::Result<void> add_route(Address, unsigned, Address, netdev::Interface&) { return base::Error::NotSupported; }
base::Result<Route> route(Address) { return base::Error::Unreachable; }
std::optional<Address> address_of(const netdev::Interface&) { return std::nullopt; }
void deconfigure(netdev::Interface&) {}
std::optional<unsigned> prefix_of(const netdev::Interface&) { return std::nullopt; }
void clear_default_gateway() {}
std::optional<Address> default_gateway() { return std::nullopt; }
void set_dns_server(Address) {}
std::optional<Address> dns_server() { return std::nullopt; }
bool is_local(Address) { return false; }
bool is_broadcast(Address a, const netdev::Interface*) { return a.is_broadcast(); }
base::Result<void> configure_static(netdev::Interface&) { return base::Error::NotSupported; }
base::Result<void> send(netdev::PacketRef, Address, Address, Protocol, const SendOptions&) {
    return base::Error::NotSupported;
}
base::Result<void> register_protocol(Protocol, ProtocolHandler, void*) { return base::Error::NotSupported; }
void unregister_protocol(Protocol) {}
[[gnu::weak]] void send_icmp_error(std::uint8_t, std::uint8_t, const Header&, netdev::PacketRef) {}
Stats stats() { return {}; }

base::Result<void> init_start() { return {}; }

} // namespace tessera::ipv4
