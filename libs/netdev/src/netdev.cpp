// Interfaces, the receive queue, EtherType dispatch and the network thread.
//
// Concurrency in one place:
//   g_table_lock  (spinlock) the interface table, the EtherType table and
//                 the unregister hooks.
//   g_queue_lock  (spinlock) the receive ring, the work list and the
//                 enqueue sequence. receive() and schedule() take it from
//                 any context, then wake the thread after releasing it.
//   g_dispatch    (sync::Mutex) held by the network thread while it runs
//                 handlers, work and driver polls. Taking it elsewhere
//                 waits until none of those is running: unregister_* use
//                 that to guarantee "not called again, not running now".
// Lock order: g_dispatch -> (whatever handlers take) -> sched g_lock ->
// g_table_lock / g_queue_lock (never nested) -> pool lock.
#include <arch/spinlock.hpp>
#include <atomic>
#include <base/verify.hpp>
#include <klog/klog.hpp>
#include <netdev/interface.hpp>
#include "transmit_ready.hpp"
#include <sched/sched.hpp>
#include <sync/mutex.hpp>

namespace tessera::netdev {

struct Internals {
    static const DriverOps& ops(Interface& i) { return *i.m_ops; }
    static void set_index(Interface& i, unsigned index) { i.m_index = index; }
};

namespace {

constexpr unsigned kEthertypes = 16;
constexpr unsigned kRing = CONFIG_NETDEV_RX_QUEUE;

struct EthertypeEntry {
    std::uint16_t type = 0;
    EthertypeHandler handler = nullptr;
    void* context = nullptr;
};

// Lock order: below sched g_lock, never nested with g_queue_lock.
constinit arch::Spinlock g_table_lock{"netdev table"};
constinit Interface* g_interfaces[kMaxInterfaces] = {};
constinit EthertypeEntry g_ethertypes[kEthertypes] = {};
struct HookEntry {
    UnregisterHook hook = nullptr;
    void* context = nullptr;
};
constinit HookEntry g_unregister_hooks[kUnregisterHooks] = {};
// Read from any context (transmit_space() runs in interrupt handlers):
// slots are only ever filled, once, at init.
constinit std::atomic<Work*> g_transmit_ready[kTransmitReady] = {};

// Lock order: below sched g_lock (no scheduler call under it), above the
// pool lock (a full ring frees the packet after release, though).
constinit arch::Spinlock g_queue_lock{"netdev queue"};
constinit Packet* g_ring[kRing] = {};
constinit unsigned g_head = 0, g_count = 0; // under g_queue_lock
constinit Work* g_work_head = nullptr;      // FIFO, under g_queue_lock
constinit Work* g_work_tail = nullptr;
constinit Work* g_after_batch = nullptr;    // LIFO (order is irrelevant), under g_queue_lock
constinit std::uint64_t g_enqueued = 0;     // frames + work ever queued, under g_queue_lock
constinit std::atomic<std::uint64_t> g_handled{0}; // ... and handled (thread only writes)
constinit bool g_poll_pending = false;      // an interface asked for a poll; under g_queue_lock

// Held by the network thread while it runs protocol code (see above).
constinit sync::Mutex g_dispatch{"netdev dispatch"};

constinit std::atomic<int> g_thread_state{0}; // 0 not started, 1 starting, 2 running
constinit sched::ThreadHandle g_thread{};     // valid once state is 2

constinit std::atomic<std::uint64_t> g_dispatched{0}, g_runts{0}, g_unknown{0}, g_queue_full{0}, g_work_runs{0};
constinit std::atomic<std::uint32_t> g_queue_max{0};

void wake() {
    if (g_thread_state.load(std::memory_order_acquire) == 2) (void)sched::unpark(g_thread);
}

void dispatch(Packet* raw) {
    PacketRef packet = PacketRef::adopt(raw);
    Interface& iface = *packet->interface();
    if (packet->length() < kEthernetHeader) {
        iface.count_rx_error();
        g_runts.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    packet->mark_link_header();
    auto* header = reinterpret_cast<const EthernetHeader*>(packet->bytes());
    std::uint16_t type = header->ethertype();
    EthertypeEntry entry;
    {
        arch::SpinlockGuard guard(g_table_lock);
        for (const EthertypeEntry& e : g_ethertypes)
            if (e.handler && e.type == type) entry = e;
    }
    if (!entry.handler) {
        iface.count_rx_drop();
        g_unknown.fetch_add(1, std::memory_order_relaxed);
        return;
    }
    (void)packet->pull(kEthernetHeader);
    g_dispatched.fetch_add(1, std::memory_order_relaxed);
    entry.handler(iface, std::move(packet), entry.context);
}

void poll_interfaces() {
    Interface* list[kMaxInterfaces];
    {
        arch::SpinlockGuard guard(g_table_lock);
        for (unsigned i = 0; i < kMaxInterfaces; ++i) list[i] = g_interfaces[i];
    }
    for (Interface* iface : list) {
        if (!iface) continue;
        if (Internals::ops(*iface).poll) Internals::ops(*iface).poll(*iface);
    }
}

// Handles everything queued until the queue is empty. Caller holds
// g_dispatch. Returns how many items it handled.
std::uint64_t drain() {
    std::uint64_t handled = 0;
    for (;;) {
        Packet* frame = nullptr;
        Work* work = nullptr;
        bool poll = false;
        {
            arch::SpinlockGuard guard(g_queue_lock);
            if (g_work_head) {
                work = g_work_head;
                g_work_head = work->next;
                if (!g_work_head) g_work_tail = nullptr;
            } else if (g_count) {
                frame = g_ring[g_head];
                g_head = (g_head + 1) % kRing;
                --g_count;
            } else if (g_after_batch) {
                work = g_after_batch;
                g_after_batch = work->next;
            } else {
                poll = g_poll_pending || handled;
                g_poll_pending = false;
            }
        }
        if (work) {
            // Cleared before the call, so the function may reschedule itself.
            work->pending.store(0, std::memory_order_release);
            g_work_runs.fetch_add(1, std::memory_order_relaxed);
            work->function(work->context);
        } else if (frame) {
            dispatch(frame);
        } else {
            if (poll) poll_interfaces();
            return handled;
        }
        ++handled;
        g_handled.fetch_add(1, std::memory_order_release);
    }
}

void network_thread(void*) {
    for (;;) {
        g_dispatch.lock();
        drain();
        g_dispatch.unlock();
        // A frame queued after drain() saw the queue empty has unparked us:
        // the token makes this park() return at once.
        sched::park();
    }
}

base::Result<void> ensure_started() {
    int state = 0;
    if (!g_thread_state.compare_exchange_strong(state, 1, std::memory_order_acq_rel)) {
        // Someone else is starting it: it will be running before anything
        // it must handle can be missed (the queue persists), so go on.
        return {};
    }
    auto thread = sched::spawn(network_thread, nullptr, {"net", CONFIG_NETDEV_THREAD_PRIORITY, 16 * 1024});
    if (!thread.ok()) {
        g_thread_state.store(0, std::memory_order_release);
        klog::error("netdev: cannot start the network thread: {}", thread.error());
        return thread.error();
    }
    g_thread = thread.value();
    g_thread_state.store(2, std::memory_order_release);
    wake(); // anything queued before the handle was published
    return {};
}

// Removes the frames received on `iface` from the ring (they must not reach
// a handler once the interface is gone) and frees them.
void purge(Interface& iface) {
    Packet* dropped = nullptr;
    std::uint64_t n = 0;
    {
        arch::SpinlockGuard guard(g_queue_lock);
        unsigned kept = 0;
        for (unsigned i = 0; i < g_count; ++i) {
            Packet* p = g_ring[(g_head + i) % kRing];
            if (p->interface() == &iface) {
                p->next = dropped;
                dropped = p;
                ++n;
            } else {
                g_ring[(g_head + kept++) % kRing] = p;
            }
        }
        g_count = kept;
    }
    while (dropped) {
        Packet* next = dropped->next;
        PacketRef::adopt(dropped).reset();
        iface.count_rx_drop();
        dropped = next;
    }
    g_handled.fetch_add(n, std::memory_order_release);
}

} // namespace

base::Result<void> Interface::transmit(PacketRef packet) {
    if (!link_up()) {
        count_tx_drop();
        return base::Error::Unavailable;
    }
    std::size_t length = packet->length();
    if (length < kEthernetHeader || length > kMaxFrame) {
        count_tx_error();
        return base::Error::Malformed;
    }
    if (length < kMinFrame) {
        std::byte* pad = packet->put(kMinFrame - length);
        if (!pad) {
            count_tx_error();
            return base::Error::Malformed;
        }
        for (std::size_t i = 0; i < kMinFrame - length; ++i) pad[i] = std::byte{0};
        length = kMinFrame;
    }
    auto r = m_ops->transmit(*this, std::move(packet));
    if (r.ok()) {
        count_tx(length);
    } else if (r.error() == base::Error::Overloaded || r.error() == base::Error::WouldBlock) {
        count_tx_drop(); // ring full: a drop, not a fault
    } else {
        count_tx_error();
    }
    return r;
}

base::Result<void> Interface::send_frame(PacketRef packet, MacAddress destination, std::uint16_t ethertype) {
    auto* header = reinterpret_cast<EthernetHeader*>(packet->push(kEthernetHeader));
    if (!header) {
        count_tx_error();
        return base::Error::Malformed;
    }
    for (int i = 0; i < 6; ++i) {
        header->destination[i] = destination.bytes[i];
        header->source[i] = m_mac.bytes[i];
    }
    header->ethertype_be[0] = static_cast<std::uint8_t>(ethertype >> 8);
    header->ethertype_be[1] = static_cast<std::uint8_t>(ethertype);
    return transmit(std::move(packet));
}

void Interface::request_poll() {
    {
        arch::SpinlockGuard guard(g_queue_lock);
        g_poll_pending = true;
    }
    wake();
}

Counters Interface::counters() const {
    auto r = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    return {r(m_rx_packets), r(m_rx_bytes), r(m_rx_drops), r(m_rx_errors),
            r(m_tx_packets), r(m_tx_bytes), r(m_tx_drops), r(m_tx_errors)};
}

base::Result<void> register_interface(Interface& iface) {
    {
        arch::SpinlockGuard guard(g_table_lock);
        unsigned free_slot = kMaxInterfaces;
        for (unsigned i = 0; i < kMaxInterfaces; ++i) {
            if (!g_interfaces[i]) {
                if (free_slot == kMaxInterfaces) free_slot = i;
            } else if (g_interfaces[i] == &iface || g_interfaces[i]->name() == iface.name()) {
                return base::Error::Exists;
            }
        }
        if (free_slot == kMaxInterfaces) return base::Error::NoMemory;
        g_interfaces[free_slot] = &iface;
        Internals::set_index(iface, free_slot);
    }
    if (auto r = ensure_started(); !r.ok()) {
        unregister_interface(iface);
        return r;
    }
    return {};
}

base::Result<void> add_transmit_ready(Work& work) {
    arch::SpinlockGuard guard(g_table_lock);
    for (auto& slot : g_transmit_ready) {
        if (slot.load(std::memory_order_relaxed) == &work) return {};
        if (!slot.load(std::memory_order_relaxed)) {
            slot.store(&work, std::memory_order_release);
            return {};
        }
    }
    return base::Error::NoMemory;
}

void detail::schedule_transmit_ready() {
    for (auto& slot : g_transmit_ready)
        if (Work* w = slot.load(std::memory_order_acquire)) schedule(*w);
}

void Interface::transmit_space() {
    if (m_transmit_full.load(std::memory_order_acquire) && m_transmit_full.exchange(0, std::memory_order_acq_rel))
        detail::schedule_transmit_ready();
}

base::Result<void> register_unregister_hook(UnregisterHook hook, void* context) {
    arch::SpinlockGuard guard(g_table_lock);
    for (HookEntry& e : g_unregister_hooks)
        if (!e.hook) {
            e = {hook, context};
            return {};
        }
    return base::Error::NoMemory;
}

void unregister_interface(Interface& iface) {
    HookEntry hooks[kUnregisterHooks];
    {
        arch::SpinlockGuard guard(g_table_lock);
        for (auto& slot : g_interfaces)
            if (slot == &iface) slot = nullptr;
        for (unsigned i = 0; i < kUnregisterHooks; ++i) hooks[i] = g_unregister_hooks[i];
    }
    Internals::set_index(iface, ~0u);
    purge(iface);
    auto run_hooks = [&] {
        for (const HookEntry& e : hooks)
            if (e.hook) e.hook(iface, e.context);
    };
    if (in_network_thread()) { // we are the dispatcher (and hold g_dispatch): nothing else runs
        run_hooks();
        return;
    }
    // Whatever the network thread is doing with the interface (a handler
    // holding one of its frames, a poll) finishes before we get the mutex;
    // the hooks run under it, as handlers do.
    g_dispatch.lock();
    run_hooks();
    g_dispatch.unlock();
}

Interface* find_interface(std::string_view name) {
    arch::SpinlockGuard guard(g_table_lock);
    for (Interface* i : g_interfaces)
        if (i && i->name() == name) return i;
    return nullptr;
}

Interface* interface_at(unsigned index) {
    if (index >= kMaxInterfaces) return nullptr;
    arch::SpinlockGuard guard(g_table_lock);
    return g_interfaces[index];
}

namespace {
// Queues the frames in order, one lock section for all of them; those past
// a full ring are dropped (counted, freed outside the lock). Returns
// whether any was queued.
bool enqueue(Interface& iface, std::span<PacketRef> packets) {
    std::size_t bytes = 0;
    unsigned queued = 0;
    for (PacketRef& p : packets) p->set_interface(&iface);
    {
        arch::SpinlockGuard guard(g_queue_lock);
        for (; queued < packets.size() && g_count < kRing; ++queued) {
            bytes += packets[queued]->length();
            g_ring[(g_head + g_count) % kRing] = packets[queued].release();
            ++g_count;
            ++g_enqueued;
        }
        if (g_count > g_queue_max.load(std::memory_order_relaxed))
            g_queue_max.store(g_count, std::memory_order_relaxed);
    }
    if (queued) iface.count_rx(bytes, queued);
    for (std::size_t i = queued; i < packets.size(); ++i) {
        iface.count_rx_drop();
        g_queue_full.fetch_add(1, std::memory_order_relaxed);
        packets[i].reset(); // back to the pool, outside the lock
    }
    return queued != 0;
}
} // namespace

void receive(Interface& iface, PacketRef packet) {
    if (enqueue(iface, {&packet, 1})) wake();
}

void receive(Interface& iface, std::span<PacketRef> packets) {
    if (enqueue(iface, packets)) wake();
}

unsigned receive_room() {
    arch::SpinlockGuard guard(g_queue_lock);
    return kRing - g_count;
}

base::Result<void> register_ethertype(std::uint16_t ethertype, EthertypeHandler handler, void* context) {
    if (!handler) return base::Error::InvalidArgument;
    {
        arch::SpinlockGuard guard(g_table_lock);
        EthertypeEntry* free_entry = nullptr;
        for (EthertypeEntry& e : g_ethertypes) {
            if (e.handler && e.type == ethertype) return base::Error::Busy;
            if (!e.handler && !free_entry) free_entry = &e;
        }
        if (!free_entry) return base::Error::NoMemory;
        *free_entry = {ethertype, handler, context};
    }
    return ensure_started();
}

void unregister_ethertype(std::uint16_t ethertype) {
    {
        arch::SpinlockGuard guard(g_table_lock);
        for (EthertypeEntry& e : g_ethertypes)
            if (e.handler && e.type == ethertype) e = {};
    }
    if (in_network_thread()) return;
    g_dispatch.lock(); // a call already under way returns before we get it
    g_dispatch.unlock();
}

namespace {
// schedule() and schedule_after_batch(): a pending item is not queued twice.
void enqueue_work(Work& work, bool after_batch) {
    if (work.pending.exchange(1, std::memory_order_acq_rel)) return;
    {
        arch::SpinlockGuard guard(g_queue_lock);
        if (after_batch) {
            work.next = g_after_batch;
            g_after_batch = &work;
        } else {
            work.next = nullptr;
            if (g_work_tail) g_work_tail->next = &work; else g_work_head = &work;
            g_work_tail = &work;
        }
        ++g_enqueued;
    }
    wake();
}
} // namespace

void schedule(Work& work) { enqueue_work(work, false); }
void schedule_after_batch(Work& work) { enqueue_work(work, true); }

void flush() {
    if (in_network_thread()) {
        drain();
        return;
    }
    if (ensure_started().ok() == false) return;
    // Twice: what was queued before the call, then what that queued in
    // turn (work scheduled after the batch, such as TCP's merged ACKs and
    // stretched ACKs), so that the caller sees their effects too. Items
    // queued meanwhile by others are waited for as well, but no more.
    for (int round = 0; round < 2; ++round) {
        std::uint64_t target;
        {
            arch::SpinlockGuard guard(g_queue_lock);
            target = g_enqueued;
        }
        wake();
        // The network thread normally outranks the caller and is done
        // before we look; otherwise poll gently.
        while (g_handled.load(std::memory_order_acquire) < target) sched::sleep_for_ns(20'000);
    }
}

bool in_network_thread() {
    return g_thread_state.load(std::memory_order_acquire) == 2 && sched::self() == g_thread;
}

Stats stats() {
    auto r = [](const std::atomic<std::uint64_t>& c) { return c.load(std::memory_order_relaxed); };
    return {r(g_dispatched), r(g_runts), r(g_unknown), r(g_queue_full), r(g_work_runs),
            g_queue_max.load(std::memory_order_relaxed)};
}

} // namespace tessera::netdev
