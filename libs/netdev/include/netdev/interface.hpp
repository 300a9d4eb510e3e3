#pragma once
// Network interfaces, the receive path and EtherType dispatch.
//
// Threading model (docs/libs/netdev.md has the long form):
//   - Drivers call receive() from their interrupt handlers (or any
//     context): it only enqueues the frame in a bounded queue and wakes the
//     network thread. No allocation, no blocking.
//   - One network thread (priority CONFIG_NETDEV_THREAD_PRIORITY) drains
//     the queue, checks the Ethernet header and calls the handler
//     registered for the frame's EtherType. Protocol code runs there, and
//     in application threads that call protocol APIs; handlers may take
//     mutexes and allocate packets, but must not sleep for long (they hold
//     up every other frame). Deferred work (timers firing in interrupt
//     context) is moved to the network thread with schedule(Work&).
//   - Interface::transmit() may be called from threads (network thread or
//     applications); drivers serialize their own queues.
//
// Lock order: protocol mutexes (sleeping) -> sched g_lock -> driver queue
// locks -> netdev rx queue lock -> netdev pool lock -> klog. netdev's own
// spinlocks are leaves apart from the pool lock below them; no scheduler
// call is ever made under them (see base/lock_order.hpp).
//
// SMP-safe. Registration functions: threads only.
#include <array>
#include <atomic>
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>
#include <netdev/packet.hpp>
#include <string_view>

namespace tessera::netdev {

struct MacAddress {
    std::array<std::uint8_t, 6> bytes{};
    constexpr bool operator==(const MacAddress&) const = default;
    [[nodiscard]] constexpr bool is_broadcast() const {
        for (auto b : bytes) if (b != 0xff) return false;
        return true;
    }
    [[nodiscard]] constexpr bool is_multicast() const { return bytes[0] & 1; }
    static constexpr MacAddress broadcast() { return {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}; }
};

// IEEE 802.3 header as it sits in a frame (EtherType in network order).
struct EthernetHeader {
    std::uint8_t destination[6];
    std::uint8_t source[6];
    std::uint8_t ethertype_be[2];
    [[nodiscard]] std::uint16_t ethertype() const {
        return static_cast<std::uint16_t>(ethertype_be[0] << 8 | ethertype_be[1]);
    }
    [[nodiscard]] MacAddress source_mac() const { MacAddress m; for (int i = 0; i < 6; ++i) m.bytes[i] = source[i]; return m; }
    [[nodiscard]] MacAddress destination_mac() const { MacAddress m; for (int i = 0; i < 6; ++i) m.bytes[i] = destination[i]; return m; }
};
static_assert(sizeof(EthernetHeader) == 14);
inline constexpr std::size_t kEthernetHeader = 14;
inline constexpr std::size_t kMinFrame = 60; // without FCS; shorter frames are padded on transmit

// Counters are updated with relaxed atomics from any context; a snapshot
// is consistent per field, not across fields.
struct Counters {
    std::uint64_t rx_packets, rx_bytes, rx_drops, rx_errors;
    std::uint64_t tx_packets, tx_bytes, tx_drops, tx_errors;
};

class Interface;

// What a driver provides. transmit() always takes ownership of the packet:
// on error it frees it (the caller counts nothing; Interface::transmit
// does). The packet's window is the whole frame, Ethernet header first,
// with at least 16 bytes of headroom for the driver's own header.
struct DriverOps {
    base::Result<void> (*transmit)(Interface& iface, PacketRef packet);
    // Optional: called in the network thread after each batch of received
    // frames and when the driver asks with Interface::request_poll() (RX
    // ring refill, TX completion reaping outside the IRQ handler).
    void (*poll)(Interface& iface) = nullptr;
};

class Interface {
public:
    constexpr Interface(std::string_view name, const DriverOps& ops, void* driver)
        : m_name(name), m_ops(&ops), m_driver(driver) {}
    Interface(const Interface&) = delete;
    Interface& operator=(const Interface&) = delete;

    [[nodiscard]] std::string_view name() const { return m_name; }
    [[nodiscard]] unsigned index() const { return m_index; } // valid once registered
    [[nodiscard]] void* driver() const { return m_driver; }
    [[nodiscard]] MacAddress mac() const { return m_mac; }
    void set_mac(MacAddress mac) { m_mac = mac; }
    [[nodiscard]] std::uint32_t mtu() const { return m_mtu; } // IP payload bytes per frame
    void set_mtu(std::uint32_t mtu) { m_mtu = mtu; }
    [[nodiscard]] bool link_up() const { return m_link_up.load(std::memory_order_relaxed); }
    void set_link_up(bool up) { m_link_up.store(up, std::memory_order_relaxed); }

    // Hands a complete frame (window starts at the Ethernet header) to the
    // driver, padding it to kMinFrame. Counts tx_packets/tx_bytes on
    // success, tx_errors when the driver refuses, tx_drops (and returns
    // Unavailable) when the link is down, Malformed for a frame shorter
    // than an Ethernet header or longer than kMaxFrame. Threads only.
    base::Result<void> transmit(PacketRef packet);
    // Pushes an Ethernet header (source = this interface) in front of the
    // packet's window and transmits it. Malformed if there is no headroom.
    base::Result<void> send_frame(PacketRef packet, MacAddress destination, std::uint16_t ethertype);

    // Asks the network thread to call ops.poll soon. Any context.
    void request_poll();

    // Transmit backpressure. A driver whose transmit queue is full calls
    // note_transmit_full() before its last attempt and, if that fails too,
    // returns Overloaded (Interface::transmit counts it in tx_drops). When
    // it later reclaims a slot it calls transmit_space(): if the queue had
    // been full since, every Work registered with add_transmit_ready() is
    // scheduled, so a protocol that held data back (tcp) sends it then
    // rather than waiting for a retransmission timer. Marking full before
    // the last attempt means a completion that races with it still finds
    // the mark. Any context.
    void note_transmit_full() { m_transmit_full.store(1, std::memory_order_release); }
    void transmit_space();

    [[nodiscard]] Counters counters() const;
    // For drivers and the stack; relaxed atomic increments.
    void count_rx(std::size_t bytes, std::uint64_t packets = 1) { add(m_rx_packets, packets); add(m_rx_bytes, bytes); }
    void count_rx_drop() { add(m_rx_drops, 1); }
    void count_rx_error() { add(m_rx_errors, 1); }
    void count_tx(std::size_t bytes) { add(m_tx_packets, 1); add(m_tx_bytes, bytes); }
    void count_tx_drop() { add(m_tx_drops, 1); }
    void count_tx_error() { add(m_tx_errors, 1); }

private:
    friend base::Result<void> register_interface(Interface&);
    friend void unregister_interface(Interface&);
    friend struct Internals;
    static void add(std::atomic<std::uint64_t>& c, std::uint64_t n) { c.fetch_add(n, std::memory_order_relaxed); }

    std::string_view m_name;
    const DriverOps* m_ops;
    void* m_driver;
    MacAddress m_mac{};
    std::uint32_t m_mtu = 1500;
    unsigned m_index = ~0u;
    std::atomic<bool> m_link_up{false};
    std::atomic<std::uint32_t> m_transmit_full{0}; // 32-bit: RV64 has no byte-sized AMOs
    std::atomic<std::uint64_t> m_rx_packets{0}, m_rx_bytes{0}, m_rx_drops{0}, m_rx_errors{0};
    std::atomic<std::uint64_t> m_tx_packets{0}, m_tx_bytes{0}, m_tx_drops{0}, m_tx_errors{0};
};

// Adds an interface to the table (and starts the network thread on first
// use). Exists if the name is taken, NoMemory if CONFIG_NETDEV_MAX_INTERFACES
// are registered. The interface must outlive its registration.
base::Result<void> register_interface(Interface& iface);
// Removes it and waits until the network thread no longer holds any frame
// received on it (queued frames from it are dropped), then runs the
// unregister hooks.
void unregister_interface(Interface& iface);
// Layers that keep per-interface state (ipv4's reassembly slots) drop it
// here: each hook runs once per unregister_interface(), after the last
// frame of the interface was handled, with netdev's dispatch mutex held
// (so no handler runs meanwhile: the same context as a handler, hooks may
// take protocol mutexes) and no netdev spinlock. NoMemory when
// kUnregisterHooks are registered. Threads only; for init steps (there is
// no removal).
using UnregisterHook = void (*)(Interface& iface, void* context);
inline constexpr unsigned kUnregisterHooks = 4;
base::Result<void> register_unregister_hook(UnregisterHook hook, void* context);
[[nodiscard]] Interface* find_interface(std::string_view name);
[[nodiscard]] Interface* interface_at(unsigned index); // nullptr if none there
inline constexpr unsigned kMaxInterfaces = CONFIG_NETDEV_MAX_INTERFACES;

// The receive path (drivers). Queues a frame (window = Ethernet header
// onwards) for the network thread; counts rx_packets/rx_bytes, or rx_drops
// when the queue is full (the packet is freed). Any context, never blocks.
void receive(Interface& iface, PacketRef packet);
// The same for several frames, with one wake-up of the network thread
// after all are queued (from a thread, a wake-up may switch to it at once).
void receive(Interface& iface, std::span<PacketRef> packets);
// Frames the receive queue can take now (a snapshot: other interfaces may
// take the room first). A driver that can leave frames with its device
// takes no more than this, rather than have them dropped here.
[[nodiscard]] unsigned receive_room();

// A handler gets the frame with its window past the Ethernet header
// (packet->link_header() points at it) and owns the packet. Runs in the
// network thread.
using EthertypeHandler = void (*)(Interface& iface, PacketRef packet, void* context);
// Busy if the EtherType has a handler, NoMemory if the table (16) is full.
base::Result<void> register_ethertype(std::uint16_t ethertype, EthertypeHandler handler, void* context);
// After it returns the handler is not running and will not be called again.
void unregister_ethertype(std::uint16_t ethertype);

// Deferred work run by the network thread: timers and interrupt handlers
// hand protocol work over with schedule(). A Work item is queued at most
// once at a time (scheduling a pending item is a no-op). Any context.
struct Work {
    void (*function)(void* context) = nullptr;
    void* context = nullptr;
    Work* next = nullptr;                // under the queue lock
    std::atomic<std::uint32_t> pending{0}; // 32-bit: RV64 has no byte-sized AMOs
};
void schedule(Work& work);
// The same, but the item runs only once the network thread has handled
// every frame and work item queued (the end of a receive batch), before
// it polls the drivers and parks: for work that is cheaper done once per
// batch than once per frame, such as TCP's stretched ACKs. Any context.
void schedule_after_batch(Work& work);

// Registers `work` to be scheduled whenever an interface's full transmit
// queue gains room (Interface::transmit_space()) and whenever the packet
// pool, found empty by an allocation, gets a buffer back. NoMemory beyond
// kTransmitReady items. Threads only; for init steps (there is no removal).
inline constexpr unsigned kTransmitReady = 4;
base::Result<void> add_transmit_ready(Work& work);

// Waits until every frame and work item queued before the call has been
// handled, and the work they scheduled in turn (after the batch, too).
// From the network thread itself it handles them inline.
void flush();

// True in the network thread.
[[nodiscard]] bool in_network_thread();

struct Stats {
    std::uint64_t dispatched;        // frames handed to an EtherType handler
    std::uint64_t runts;             // shorter than an Ethernet header (also rx_errors)
    std::uint64_t unknown_ethertype; // no handler (also rx_drops)
    std::uint64_t queue_full;        // receive() found the queue full (also rx_drops)
    std::uint64_t work_runs;
    std::uint32_t queue_max;         // deepest the receive queue has been
};
[[nodiscard]] Stats stats();

} // namespace tessera::netdev
