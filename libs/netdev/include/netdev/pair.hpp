#pragma once
// Two linked in-kernel interfaces, for testing protocols without a device:
// a frame transmitted on one is received (through netdev::receive(), so by
// the network thread, like a real frame) on the other. An optional hook
// sees every frame in flight and may drop it, alter it (corrupt, truncate)
// or let it pass, so tests can script loss and damage.
//
//     netdev::Pair pair("pa0", "pb0");
//     ASSERT_OK(pair.attach());          // registers both interfaces
//     ... protocol code on pair.a() and pair.b() ...
//     // ~Pair() unregisters them (after in-flight frames are handled)
//
// SMP-safe as far as Interface is. The hook runs in the transmitting
// thread's context.
#include <netdev/interface.hpp>

namespace tessera::netdev {

class Pair {
public:
    enum class Verdict : std::uint8_t { Deliver, Drop };
    // Called for each frame about to cross from `from`; may modify it.
    using Hook = Verdict (*)(Interface& from, Packet& frame, void* context);

    // MACs default to 02:00:00:00:00:0a / :0b (locally administered).
    Pair(std::string_view name_a, std::string_view name_b, MacAddress mac_a = {{2, 0, 0, 0, 0, 0x0a}},
         MacAddress mac_b = {{2, 0, 0, 0, 0, 0x0b}});
    ~Pair();
    Pair(const Pair&) = delete;
    Pair& operator=(const Pair&) = delete;

    // Registers both interfaces (link up, MTU 1500).
    base::Result<void> attach();
    void detach();

    Interface& a() { return m_a; }
    Interface& b() { return m_b; }
    void set_hook(Hook hook, void* context) {
        m_hook_context = context;
        m_hook = hook;
    }
    [[nodiscard]] std::uint64_t hook_drops() const { return m_hook_drops.load(std::memory_order_relaxed); }

private:
    static base::Result<void> transmit(Interface& iface, PacketRef packet);
    static const DriverOps kOps;
    Interface m_a;
    Interface m_b;
    Hook m_hook = nullptr;
    void* m_hook_context = nullptr;
    std::atomic<std::uint64_t> m_hook_drops{0};
    bool m_attached = false;
};

} // namespace tessera::netdev
