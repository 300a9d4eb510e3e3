#pragma once
// Interrupt-state control and small CPU primitives.
#include <arch/csr.hpp>

namespace tessera::arch {

inline void wfi() { asm volatile("wfi" ::: "memory"); }
inline void pause() { asm volatile(".insn i 0x0F, 0, x0, x0, 0x010"); } // Zihintpause
inline void fence() { asm volatile("fence rw, rw" ::: "memory"); }
inline void fence_io() { asm volatile("fence iorw, iorw" ::: "memory"); }

inline bool irqs_enabled() { return csr_read<Csr::sstatus>() & sstatus::SIE; }
inline void irq_enable() { csr_set<Csr::sstatus>(sstatus::SIE); }
inline void irq_disable() { csr_clear<Csr::sstatus>(sstatus::SIE); }

// Disables interrupts on this hart for its lifetime and restores the
// previous state (not blindly re-enables), so guards nest.
class [[nodiscard]] IrqGuard {
public:
    IrqGuard() : m_was_enabled(csr_clear<Csr::sstatus>(sstatus::SIE) & sstatus::SIE) {}
    ~IrqGuard() { if (m_was_enabled) irq_enable(); }
    IrqGuard(const IrqGuard&) = delete;
    IrqGuard& operator=(const IrqGuard&) = delete;
    bool was_enabled() const { return m_was_enabled; }

private:
    bool m_was_enabled;
};

// Sleeps until cond() holds, where cond() is made true by an interrupt
// handler. The naive `while (!cond()) wfi();` loses wake-ups: an interrupt
// taken between the check and the wfi leaves the hart asleep with nothing
// left to wake it. Here interrupts are masked from the check through the
// wfi; wfi still wakes on a pending interrupt while sstatus.SIE is clear,
// and the trap is taken as soon as SIE is set again.
// Interrupts must be enabled on entry (else nothing could make cond true).
template <typename Cond>
void wait_until(Cond&& cond) {
    for (;;) {
        irq_disable();
        if (cond()) {
            irq_enable();
            return;
        }
        wfi();
        irq_enable();
    }
}

} // namespace tessera::arch
