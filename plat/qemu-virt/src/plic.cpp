// Platform-Level Interrupt Controller (RISC-V PLIC specification v1.0.0,
// chapter "Memory Map"). One S-mode context: the boot hart's.
#include "internal.hpp"
#include <arch/cpu.hpp>
#include <arch/mmio.hpp>
#include <arch/trap.hpp>
#include <klog/klog.hpp>
#include <plat/irq.hpp>

namespace tessera::plat::irq {

namespace {

constexpr std::uint32_t kMaxSources = 128; // QEMU virt has 95 (riscv,ndev)
constexpr std::uint64_t kPriority = 0x0;
constexpr std::uint64_t kEnable = 0x2000;
constexpr std::uint64_t kEnableStride = 0x80;
constexpr std::uint64_t kContext = 0x200000;
constexpr std::uint64_t kContextStride = 0x1000;

struct Slot {
    Handler handler;
    void* context;
};
// Written only at attach/detach time with interrupts off on the boot hart.
constinit Slot g_slots[kMaxSources] = {};
constinit Stats g_stats = {};

std::uint32_t sources() {
    std::uint32_t n = machine().plic_sources;
    return n < kMaxSources ? n : kMaxSources - 1;
}

arch::Mmio<std::uint32_t> priority(std::uint32_t irq) { return arch::Mmio<std::uint32_t>(machine().plic_base + kPriority + 4 * irq); }
arch::Mmio<std::uint32_t> enable_word(std::uint32_t irq) {
    return arch::Mmio<std::uint32_t>(machine().plic_base + kEnable + kEnableStride * machine().plic_context + 4 * (irq / 32));
}
arch::Mmio<std::uint32_t> threshold() { return arch::Mmio<std::uint32_t>(machine().plic_base + kContext + kContextStride * machine().plic_context); }
arch::Mmio<std::uint32_t> claim() { return arch::Mmio<std::uint32_t>(threshold().address() + 4); }

void on_external_interrupt(arch::TrapFrame&) {
    // Claim until the PLIC has nothing more for this context, so several
    // pending sources cost one trap. Whether it has more is read from
    // sip.SEIP, the PLIC's line into this hart, rather than by another
    // claim: a CSR read, where each PLIC access is an MMIO exit (under
    // QEMU, one that takes its big lock). The line is level-triggered, so
    // one that rises just after the check traps again: nothing is missed.
    for (;;) {
        std::uint32_t id = claim().read();
        if (id == 0) return;
        ++g_stats.claimed;
        Slot slot = id < kMaxSources ? g_slots[id] : Slot{};
        if (slot.handler)
            slot.handler(slot.context);
        else
            ++g_stats.spurious;
        claim().write(id); // completion
        if (!(arch::csr_read<arch::Csr::sip>() & arch::sie_bit(arch::Interrupt::External))) return;
    }
}

} // namespace

base::Result<void> attach(std::uint32_t irq, Handler handler, void* context) {
    if (machine().plic_base == 0) return base::Error::Unavailable;
    if (irq == 0 || irq > sources()) return base::Error::OutOfRange;
    if (handler == nullptr) return base::Error::InvalidArgument;
    arch::IrqGuard guard;
    if (g_slots[irq].handler) return base::Error::Busy;
    g_slots[irq] = {handler, context};
    priority(irq).write(1);
    enable_word(irq).write(enable_word(irq).read() | (1u << (irq % 32)));
    return {};
}

void detach(std::uint32_t irq) {
    if (irq == 0 || irq > sources()) return;
    arch::IrqGuard guard;
    enable_word(irq).write(enable_word(irq).read() & ~(1u << (irq % 32)));
    priority(irq).write(0);
    g_slots[irq] = {};
}

Stats stats() { return g_stats; }

} // namespace tessera::plat::irq

namespace tessera::plat {

// Init step plat.irq: everything masked, threshold 0, external
// interrupts routed to on_external_interrupt.
base::Result<void> init_irq() {
    if (machine().plic_base == 0) {
        klog::warn("no PLIC in the device tree: external interrupts disabled");
        return {};
    }
    for (std::uint32_t i = 1; i <= irq::sources(); ++i) irq::priority(i).write(0);
    for (std::uint32_t w = 0; w <= irq::sources() / 32; ++w) irq::enable_word(w * 32).write(0);
    irq::threshold().write(0);
    arch::set_interrupt_handler(arch::Interrupt::External, irq::on_external_interrupt);
    return {};
}

} // namespace tessera::plat
