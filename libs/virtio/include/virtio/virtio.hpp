#pragma once
// virtio over MMIO (virtio 1.1, section 4.2 "Virtio Over MMIO", register
// layout version 2) with split virtqueues (section 2.6). Device drivers
// (virtio-net, later virtio-blk) use it the same way:
//
//     Device* dev = TRY(virtio::Device::claim(virtio::DeviceType::Net));
//     auto features = TRY(dev->negotiate(wanted));   // reset .. FEATURES_OK
//     TRY(dev->setup_queue(rx, 0));                   // each queue
//     TRY(dev->attach_irq(on_interrupt, driver));
//     dev->driver_ok();                               // the device goes live
//
// Only the "modern" interface is driven: a slot reporting Version 1
// (legacy) is refused with a log line (QEMU's virtio-mmio devices are
// legacy unless started with -global virtio-mmio.force-legacy=false), as
// is a device that does not offer VIRTIO_F_VERSION_1.
//
// Memory: queues live in buddy pages; physical = virtual (identity map).
//
// SMP/IRQ: claim, negotiation and queue setup are for threads (init).
// Queue::add/kick/pop take the queue's IRQ-safe spinlock and may be
// called from interrupt handlers and threads alike. The interrupt handler
// registered with attach_irq() runs in interrupt context (PLIC, boot hart).
#include <arch/mmio.hpp>
#include <arch/spinlock.hpp>
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>
#include <span>

namespace tessera::virtio {

enum class DeviceType : std::uint32_t { None = 0, Net = 1, Block = 2, Console = 3, Entropy = 4 };

// Feature bits independent of the device type (virtio 1.1, section 6).
inline constexpr std::uint64_t kFeatureIndirectDesc = 1ull << 28;
inline constexpr std::uint64_t kFeatureEventIdx = 1ull << 29;
inline constexpr std::uint64_t kFeatureVersion1 = 1ull << 32;

// Device status bits (section 2.1).
namespace status {
inline constexpr std::uint32_t kAcknowledge = 1;
inline constexpr std::uint32_t kDriver = 2;
inline constexpr std::uint32_t kDriverOk = 4;
inline constexpr std::uint32_t kFeaturesOk = 8;
inline constexpr std::uint32_t kNeedsReset = 64;
inline constexpr std::uint32_t kFailed = 128;
} // namespace status

// InterruptStatus bits (section 4.2.2).
inline constexpr std::uint32_t kInterruptUsedBuffer = 1;
inline constexpr std::uint32_t kInterruptConfigChange = 2;

struct SlotInfo {
    unsigned slot;          // index in plat::machine().virtio
    std::uint64_t base;
    std::uint32_t irq;
    std::uint32_t version;  // 2 modern, 1 legacy, 0 no virtio-mmio magic
    DeviceType type;        // None: an empty slot
    std::uint32_t vendor;
};
// What the device tree's virtio,mmio slots hold (read from the registers;
// cheap, no state change). Returns how many entries it filled.
unsigned scan(std::span<SlotInfo> out);

class Device;

// A split virtqueue (section 2.6). Descriptor chains carry an opaque token
// that pop() hands back when the device has used the chain.
class Queue {
public:
    struct Segment {
        const void* address;
        std::uint32_t length;
        bool device_writes; // VIRTQ_DESC_F_WRITE: the device fills it
    };
    struct Stats {
        std::uint64_t added;        // chains made available
        std::uint64_t used;         // chains returned by pop()
        std::uint64_t notifications; // QueueNotify writes
        std::uint64_t full;         // add() refused for lack of descriptors
        std::uint64_t bogus;        // used entries ignored: id out of range or not in flight,
                                    // or used->idx more than the ring size ahead
    };

    constexpr Queue() = default;
    Queue(const Queue&) = delete;
    Queue& operator=(const Queue&) = delete;

    // Makes a chain of the segments available (not yet notified). Overloaded
    // if fewer than segments.size() descriptors are free, InvalidArgument
    // for an empty chain or a queue that is not set up.
    base::Result<void> add(std::span<const Segment> segments, void* token);
    // Notifies the device of everything added since the last kick, unless
    // it asked not to be (VIRTQ_USED_F_NO_NOTIFY). Batching: add several,
    // kick once. Returns whether it wrote QueueNotify.
    bool kick();
    // Takes one used chain: its token and the bytes the device wrote.
    // False when the device has returned nothing new. Entries naming no
    // chain in flight (a misbehaving device) are skipped and counted in
    // Stats::bogus; a used index more than the ring size ahead is too.
    bool pop(void*& token, std::uint32_t& written);
    // Used chains not popped yet: one read of the device's used index, no
    // lock, for a driver that polls the ring (a snapshot: the device may
    // add more at any time).
    [[nodiscard]] unsigned used_waiting() const;
    // Asks the device not to interrupt for this queue (a hint:
    // VIRTQ_AVAIL_F_NO_INTERRUPT) or to interrupt again. enable returns true
    // if used chains are already waiting (pop them: no interrupt will come
    // for those).
    void disable_interrupts();
    bool enable_interrupts();
    // disable_interrupts() only if the device holds no chain (all used
    // ones popped); atomic with add(), so a chain added concurrently by
    // a caller that then enables interrupts is never left without one.
    void disable_interrupts_if_idle();

    [[nodiscard]] unsigned size() const { return m_size; }
    [[nodiscard]] unsigned free_descriptors();
    [[nodiscard]] bool is_ready() const { return m_size != 0; }
    [[nodiscard]] Stats stats();

private:
    friend class Device;
    friend struct QueueTestAccess; // ktest only: plays a misbehaving device
    struct Descriptor; // the layouts are private to queue.cpp
    struct Avail;
    struct Used;
    static constexpr unsigned kMaxSize = CONFIG_VIRTIO_QUEUE_SIZE;
    static_assert((kMaxSize & (kMaxSize - 1)) == 0, "CONFIG_VIRTIO_QUEUE_SIZE must be a power of two");
    base::Result<void> allocate_rings(std::uint16_t size); // Device::setup_queue

    // Protects everything below (the rings in memory included). Lock
    // order: a driver's queue lock sits below sched g_lock and above
    // netdev's locks (base/lock_order.hpp).
    arch::Spinlock m_lock{"virtio queue"};
    Device* m_device = nullptr;
    std::uint16_t m_index = 0;
    std::uint16_t m_size = 0;
    std::uint16_t m_free_head = 0;
    std::uint16_t m_free_count = 0;
    std::uint16_t m_avail_idx = 0;   // our copy of avail->idx
    std::uint16_t m_kicked_idx = 0;  // avail idx at the last kick
    std::uint16_t m_last_used = 0;   // next used ring entry to look at
    Descriptor* m_desc = nullptr;
    Avail* m_avail = nullptr;
    Used* m_used = nullptr;
    void* m_memory = nullptr;
    Stats m_stats{};
    void* m_tokens[kMaxSize] = {};
    // Chain heads the device holds: pop() accepts a used id only if set
    // (the device's word is not trusted with our free list).
    bool m_in_flight[kMaxSize] = {};
};

class Device {
public:
    using InterruptHandler = void (*)(void* context, std::uint32_t interrupt_status);

    // Claims the first unclaimed modern device of `type`, in QEMU
    // command-line order (the highest slot first: QEMU fills them downwards).
    // NotFound if there is none; a legacy device of that type is skipped
    // with a log line (and NotSupported if that is all there is).
    static base::Result<Device*> claim(DeviceType type);
    // Resets the device, frees its queues' memory, detaches the interrupt
    // and makes the slot claimable again. Queues must not be used after.
    void release();

    // Reset, ACKNOWLEDGE, DRIVER, feature negotiation (section 3.1.1):
    // accepts device_features & (wanted | VERSION_1), then FEATURES_OK and
    // checks the device kept it. NotSupported (FAILED set) if the device
    // lacks VERSION_1 or rejects the set. Returns the accepted features.
    base::Result<std::uint64_t> negotiate(std::uint64_t wanted);
    // Sets up virtqueue `index` with min(max_size, QueueNumMax,
    // CONFIG_VIRTIO_QUEUE_SIZE) descriptors, rounded down to a power of two.
    // After negotiate(), before driver_ok(). NotFound if the device has no
    // such queue, Busy if it is already live, NoMemory.
    base::Result<void> setup_queue(Queue& queue, std::uint16_t index, unsigned max_size = ~0u);
    // The handler gets InterruptStatus, already acknowledged.
    base::Result<void> attach_irq(InterruptHandler handler, void* context);
    void driver_ok();
    void fail(); // sets FAILED: the driver gives up on the device

    [[nodiscard]] std::uint64_t features() const { return m_features; }
    [[nodiscard]] DeviceType type() const { return m_type; }
    [[nodiscard]] std::uint32_t status() const;
    [[nodiscard]] std::uint64_t base() const { return m_base; }
    [[nodiscard]] std::uint32_t irq() const { return m_irq; }
    [[nodiscard]] std::uint32_t queue_max(std::uint16_t index);
    [[nodiscard]] std::uint64_t interrupts() const { return m_interrupts; }

    // Device-specific configuration (section 4.2.2: accesses of the field's
    // own width). Read a multi-field structure inside config_stable(), which
    // repeats it until ConfigGeneration shows no change happened meanwhile.
    template <typename T>
    [[nodiscard]] T config(std::size_t offset) const {
        static_assert(sizeof(T) == 1 || sizeof(T) == 2 || sizeof(T) == 4);
        return arch::Mmio<T>(m_base + 0x100 + offset).read();
    }
    template <typename F>
    void config_stable(F&& read) const {
        std::uint32_t before, after;
        do {
            before = reg(kConfigGeneration).read();
            read();
            after = reg(kConfigGeneration).read();
        } while (before != after);
    }

    // Used by Queue::kick.
    void notify(std::uint16_t queue) const;

private:
    friend class Queue;
    friend struct Table;
    static constexpr std::uint32_t kConfigGeneration = 0x0fc;
    arch::Mmio<std::uint32_t> reg(std::uint32_t offset) const { return arch::Mmio<std::uint32_t>(m_base + offset); }
    static void on_interrupt(void* self);

    std::uint64_t m_base = 0;
    std::uint32_t m_irq = 0;
    DeviceType m_type = DeviceType::None;
    bool m_claimed = false;
    bool m_irq_attached = false;
    std::uint64_t m_features = 0;
    InterruptHandler m_handler = nullptr;
    void* m_handler_context = nullptr;
    std::uint64_t m_interrupts = 0; // written in its interrupt handler only
    Queue* m_queues[4] = {};        // set up by setup_queue, for release()
};

} // namespace tessera::virtio
