// virtio-mmio transport: slot discovery, claiming, status and feature
// negotiation, queue registration, the interrupt. Register offsets and
// rules: virtio 1.1, section 4.2.2 (MMIO device register layout) and
// 3.1.1 (driver initialization).
#include <arch/cpu.hpp>
#include <arch/spinlock.hpp>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <plat/irq.hpp>
#include <plat/machine.hpp>
#include <virtio/virtio.hpp>

namespace tessera::virtio {

namespace {

// Section 4.2.2, "MMIO Device Register Layout".
enum Reg : std::uint32_t {
    kMagic = 0x000,            // "virt"
    kVersion = 0x004,
    kDeviceId = 0x008,
    kVendorId = 0x00c,
    kDeviceFeatures = 0x010,
    kDeviceFeaturesSel = 0x014,
    kDriverFeatures = 0x020,
    kDriverFeaturesSel = 0x024,
    kQueueSel = 0x030,
    kQueueNumMax = 0x034,
    kQueueNum = 0x038,
    kQueueReady = 0x044,
    kQueueNotify = 0x050,
    kInterruptStatus = 0x060,
    kInterruptAck = 0x064,
    kStatus = 0x070,
    kQueueDescLow = 0x080,
    kQueueDescHigh = 0x084,
    kQueueDriverLow = 0x090,
    kQueueDriverHigh = 0x094,
    kQueueDeviceLow = 0x0a0,
    kQueueDeviceHigh = 0x0a4,
};
constexpr std::uint32_t kMagicValue = 0x74726976; // "virt", little endian

arch::Mmio<std::uint32_t> at(std::uint64_t base, std::uint32_t offset) { return arch::Mmio<std::uint32_t>(base + offset); }

} // namespace

// The slots, one Device each. Claims come from init code and tests
// (threads), so a spinlock around the claimed flags is all it needs.
struct Table {
    arch::Spinlock lock{"virtio table"}; // a leaf: protects Device::m_claimed
    Device devices[8];
};
namespace {
constinit Table g_table;
} // namespace

unsigned scan(std::span<SlotInfo> out) {
    const plat::MachineInfo& m = plat::machine();
    unsigned n = 0;
    for (unsigned i = 0; i < m.virtio_count && n < out.size(); ++i) {
        std::uint64_t base = m.virtio[i].base;
        SlotInfo info{i, base, m.virtio[i].irq, 0, DeviceType::None, 0};
        if (at(base, kMagic).read() == kMagicValue) {
            info.version = at(base, kVersion).read();
            info.type = static_cast<DeviceType>(at(base, kDeviceId).read());
            info.vendor = at(base, kVendorId).read();
        }
        out[n++] = info;
    }
    return n;
}

base::Result<Device*> Device::claim(DeviceType type) {
    SlotInfo slots[8];
    unsigned n = scan(slots);
    bool saw_legacy = false;
    // QEMU's virt machine fills the slots from the top: scanning downwards
    // claims devices in the order of their -device options.
    for (unsigned i = n; i-- > 0;) {
        const SlotInfo& s = slots[i];
        if (s.type != type) continue;
        if (s.version != 2) {
            klog::warn("virtio: slot {} at {:#x} is a legacy (version {}) device, not driven; start QEMU with "
                       "-global virtio-mmio.force-legacy=false",
                       s.slot, s.base, s.version);
            saw_legacy = true;
            continue;
        }
        arch::SpinlockGuard guard(g_table.lock);
        Device& d = g_table.devices[s.slot];
        if (d.m_claimed) continue;
        d = {};
        d.m_base = s.base;
        d.m_irq = s.irq;
        d.m_type = type;
        d.m_claimed = true;
        return &d;
    }
    return saw_legacy ? base::Error::NotSupported : base::Error::NotFound;
}

void Device::release() {
    // Writing 0 resets the device (section 4.2.2): it stops using the
    // queues, so their memory can go.
    reg(kStatus).write(0);
    while (reg(kStatus).read() != 0) arch::pause();
    if (m_irq_attached) plat::irq::detach(m_irq);
    m_irq_attached = false;
    for (Queue*& q : m_queues) {
        if (!q) continue;
        mm_buddy::free_pages(q->m_memory);
        q->m_memory = nullptr;
        q->m_size = 0;
        q->m_device = nullptr;
        q = nullptr;
    }
    arch::SpinlockGuard guard(g_table.lock);
    m_claimed = false;
}

std::uint32_t Device::status() const { return reg(kStatus).read(); }

base::Result<std::uint64_t> Device::negotiate(std::uint64_t wanted) {
    // Section 3.1.1: reset, ACKNOWLEDGE, DRIVER, read features, write the
    // subset we understand, FEATURES_OK, re-read status.
    reg(kStatus).write(0);
    while (reg(kStatus).read() != 0) arch::pause(); // reset completes when status reads 0
    reg(kStatus).write(status::kAcknowledge);
    reg(kStatus).write(status::kAcknowledge | status::kDriver);

    reg(kDeviceFeaturesSel).write(0);
    std::uint64_t offered = reg(kDeviceFeatures).read();
    reg(kDeviceFeaturesSel).write(1);
    offered |= static_cast<std::uint64_t>(reg(kDeviceFeatures).read()) << 32;
    if (!(offered & kFeatureVersion1)) {
        klog::error("virtio: device at {:#x} does not offer VIRTIO_F_VERSION_1 (features {:#x})", m_base, offered);
        fail();
        return base::Error::NotSupported;
    }
    std::uint64_t accepted = offered & (wanted | kFeatureVersion1);
    reg(kDriverFeaturesSel).write(0);
    reg(kDriverFeatures).write(static_cast<std::uint32_t>(accepted));
    reg(kDriverFeaturesSel).write(1);
    reg(kDriverFeatures).write(static_cast<std::uint32_t>(accepted >> 32));

    reg(kStatus).write(status::kAcknowledge | status::kDriver | status::kFeaturesOk);
    if (!(reg(kStatus).read() & status::kFeaturesOk)) {
        klog::error("virtio: device at {:#x} refused features {:#x}", m_base, accepted);
        fail();
        return base::Error::NotSupported;
    }
    m_features = accepted;
    return accepted;
}

std::uint32_t Device::queue_max(std::uint16_t index) {
    reg(kQueueSel).write(index);
    return reg(kQueueNumMax).read();
}

base::Result<void> Device::setup_queue(Queue& q, std::uint16_t index, unsigned max_size) {
    if (index >= sizeof(m_queues) / sizeof(m_queues[0]) || q.m_size) return base::Error::InvalidArgument;
    // Section 4.2.3.2, "Virtqueue Configuration".
    reg(kQueueSel).write(index);
    if (reg(kQueueReady).read() != 0) return base::Error::Busy;
    std::uint32_t device_max = reg(kQueueNumMax).read();
    if (device_max == 0) return base::Error::NotFound;
    std::uint32_t size = device_max;
    if (size > max_size) size = max_size;
    if (size > Queue::kMaxSize) size = Queue::kMaxSize;
    while (size & (size - 1)) size &= size - 1; // split queues: a power of two (2.6)
    if (size == 0) return base::Error::InvalidArgument;

    TRY(q.allocate_rings(static_cast<std::uint16_t>(size)));
    auto address = [](const void* p) { return reinterpret_cast<std::uint64_t>(p); };
    reg(kQueueNum).write(size);
    reg(kQueueDescLow).write(static_cast<std::uint32_t>(address(q.m_desc)));
    reg(kQueueDescHigh).write(static_cast<std::uint32_t>(address(q.m_desc) >> 32));
    reg(kQueueDriverLow).write(static_cast<std::uint32_t>(address(q.m_avail)));
    reg(kQueueDriverHigh).write(static_cast<std::uint32_t>(address(q.m_avail) >> 32));
    reg(kQueueDeviceLow).write(static_cast<std::uint32_t>(address(q.m_used)));
    reg(kQueueDeviceHigh).write(static_cast<std::uint32_t>(address(q.m_used) >> 32));
    arch::fence_io(); // the ring memory (zeroed) is visible before the queue goes live
    reg(kQueueReady).write(1);
    q.m_device = this;
    q.m_index = index;
    m_queues[index] = &q;
    return {};
}

base::Result<void> Device::attach_irq(InterruptHandler handler, void* context) {
    m_handler = handler;
    m_handler_context = context;
    TRY(plat::irq::attach(m_irq, on_interrupt, this));
    m_irq_attached = true;
    return {};
}

void Device::on_interrupt(void* self) {
    auto& d = *static_cast<Device*>(self);
    // Acknowledge first (section 4.2.2): a completion arriving while the
    // driver processes raises the line again instead of being lost.
    std::uint32_t why = d.reg(kInterruptStatus).read();
    d.reg(kInterruptAck).write(why);
    ++d.m_interrupts;
    if (why && d.m_handler) d.m_handler(d.m_handler_context, why);
}

void Device::driver_ok() {
    arch::fence_io();
    reg(kStatus).write(reg(kStatus).read() | status::kDriverOk);
}

void Device::fail() { reg(kStatus).write(reg(kStatus).read() | status::kFailed); }

void Device::notify(std::uint16_t queue) const {
    // The ring updates must reach memory before the device hears of them:
    // a store to main memory, then a device (I/O) store.
    arch::fence_io();
    reg(kQueueNotify).write(queue);
}

} // namespace tessera::virtio
