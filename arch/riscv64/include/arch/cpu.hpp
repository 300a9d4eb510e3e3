#pragma once
// Interrupt-state control and small CPU primitives.
#include <arch/csr.hpp>

namespace tessera::arch {

inline void wfi() { asm volatile("wfi" ::: "memory"); }
inline void pause() { asm volatile(".insn i 0x0F, 0, x0, x0, 0x010"); } // Zihintpause
inline void fence() { asm volatile("fence rw, rw" ::: "memory"); }
inline void fence_io() { asm volatile("fence iorw, iorw" ::: "memory"); }

// Interrupt masking is lazy. Masking sets this hart's Hart::irq_masked
// and leaves sstatus.SIE alone: a store instead of a CSR write, which
// matters on the hottest paths (every spinlock): real cores tend to
// serialise on sstatus writes, and under QEMU's TCG every CSR access ends
// the translation block and costs as much as ~25 plain instructions. An
// interrupt that arrives while masked is held back, not handled: the trap
// vector (trap_entry.S) clears SPIE so the interrupted code resumes with
// SIE clear, and sets Hart::sie_off; the interrupt stays pending at its
// source (sip), as with a hardware mask. Unmasking sets SIE again if it
// was cleared, and the held interrupt is taken there. Masked code sees no
// difference from a hardware mask: no handler runs on this hart; wfi still
// wakes for a pending interrupt.
//
// Each helper reads or writes the flags in single instructions through tp,
// so a thread preempted and moved to another hart between two of them
// still acts on the hart it runs on: it can only be preempted while
// unmasked, and it resumes unmasked with SIE set (see irq_unmask).
namespace detail {
inline constexpr unsigned kIrqMaskedOffset = 17; // offsetof(Hart, irq_masked), asserted in hart.hpp
inline constexpr unsigned kSieOffOffset = 18;    // offsetof(Hart, sie_off)
} // namespace detail

inline bool irqs_enabled() {
    std::uint64_t masked;
    asm volatile("lbu %0, %1(tp)" : "=r"(masked) : "i"(detail::kIrqMaskedOffset) : "memory");
    return !masked;
}

// Masks interrupts on this hart; returns whether they were unmasked.
[[nodiscard]] inline bool irq_mask() {
    std::uint64_t was;
    asm volatile("lbu %0, %2(tp)\n\tsb %1, %2(tp)"
                 : "=&r"(was)
                 : "r"(1), "i"(detail::kIrqMaskedOffset)
                 : "memory");
    return !was;
}

// Unmasks interrupts on this hart, taking any that was held back.
inline void irq_unmask() {
    std::uint64_t sie_off;
    // An interrupt between the two instructions is taken (SIE is set
    // unless sie_off is) and may move the thread; then sie_off is read on
    // the new hart, where it is clear: the thread resumed there unmasked.
    asm volatile("sb zero, %1(tp)\n\tlbu %0, %2(tp)"
                 : "=r"(sie_off)
                 : "i"(detail::kIrqMaskedOffset), "i"(detail::kSieOffOffset)
                 : "memory");
    if (sie_off) [[unlikely]] { // SIE is clear: nothing can move the thread until it is set
        asm volatile("sb zero, %0(tp)\n\tcsrsi sstatus, 2" ::"i"(detail::kSieOffOffset) : "memory");
    }
}

inline void irq_enable() { irq_unmask(); }
inline void irq_disable() { (void)irq_mask(); }

// Masks interrupts and clears sstatus.SIE too, for good: for code that
// stops the hart (panic, power-off), where not even the trap vector
// should run again for an interrupt.
inline void irq_disable_hard() {
    csr_clear<Csr::sstatus>(sstatus::SIE);
    asm volatile("sb %0, %1(tp)\n\tsb %0, %2(tp)" ::"r"(1), "i"(detail::kIrqMaskedOffset),
                 "i"(detail::kSieOffOffset)
                 : "memory");
}

// Masks interrupts on this hart for its lifetime and restores the
// previous state (not blindly re-enables), so guards nest.
class [[nodiscard]] IrqGuard {
public:
    IrqGuard() : m_was_enabled(irq_mask()) {}
    ~IrqGuard() { if (m_was_enabled) irq_unmask(); }
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
// wfi; one that comes in between is held back with SIE cleared, wfi still
// wakes for it (wfi ignores SIE), and it is taken at the unmask.
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
