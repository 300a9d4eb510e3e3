// netdev::Pair: what one side transmits, the other receives through the
// ordinary receive path (queue + network thread), so protocol tests see
// exactly the contexts a real driver produces.
#include <netdev/pair.hpp>

namespace tessera::netdev {

const DriverOps Pair::kOps = {&Pair::transmit, nullptr};

Pair::Pair(std::string_view name_a, std::string_view name_b, MacAddress mac_a, MacAddress mac_b)
    : m_a(name_a, kOps, this), m_b(name_b, kOps, this) {
    m_a.set_mac(mac_a);
    m_b.set_mac(mac_b);
}

Pair::~Pair() { detach(); }

base::Result<void> Pair::attach() {
    if (m_attached) return base::Error::Busy;
    if (auto r = register_interface(m_a); !r.ok()) return r;
    if (auto r = register_interface(m_b); !r.ok()) {
        unregister_interface(m_a);
        return r;
    }
    m_a.set_link_up(true);
    m_b.set_link_up(true);
    m_attached = true;
    return {};
}

void Pair::detach() {
    if (!m_attached) return;
    m_a.set_link_up(false);
    m_b.set_link_up(false);
    unregister_interface(m_a);
    unregister_interface(m_b);
    m_attached = false;
}

base::Result<void> Pair::transmit(Interface& from, PacketRef packet) {
    auto& pair = *static_cast<Pair*>(from.driver());
    Interface& to = &from == &pair.m_a ? pair.m_b : pair.m_a;
    if (Hook hook = pair.m_hook; hook && hook(from, *packet, pair.m_hook_context) == Verdict::Drop) {
        pair.m_hook_drops.fetch_add(1, std::memory_order_relaxed);
        return {}; // lost on the wire: the sender cannot tell
    }
    receive(to, std::move(packet));
    return {};
}

} // namespace tessera::netdev
