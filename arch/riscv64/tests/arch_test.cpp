#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <arch/sbi.hpp>
#include <arch/spinlock.hpp>
#include <arch/trap.hpp>
#include <ktest/ktest.hpp>
#include <plat/timer.hpp>

using namespace tessera;

namespace {
volatile bool g_timer_fired = false;

// Runs in interrupt context and deliberately clobbers FP registers: the
// trap path must restore the interrupted code's values.
void clobbering_timer_handler() {
    asm volatile("fmv.d.x ft0, zero\n fmv.d.x ft1, zero\n fmv.d.x fs0, zero\n fmv.d.x fa0, zero" ::: "ft0", "ft1",
                 "fs0", "fa0");
    g_timer_fired = true;
}
} // namespace

KTEST(arch, fp_registers_survive_interrupts) {
    auto previous_handler = plat::timer::set_handler(clobbering_timer_handler);
    g_timer_fired = false;
    std::uint64_t in[4] = {0x400921fb54442d18ull, 0x4005bf0a8b145769ull, 0x3ff0000000000001ull, 0xc0dec0dec0dec0deull};
    std::uint64_t out[4] = {};
    plat::timer::arm(plat::timer::now() + 1000);
    // Load the FP registers, wait for the interrupt in the same asm block so
    // the compiler cannot spill them, then read them back. The wait masks
    // interrupts across check + wfi (see arch::wait_until).
    asm volatile(
        "fld ft0, 0(%[in])\n fld ft1, 8(%[in])\n fld fs0, 16(%[in])\n fld fa0, 24(%[in])\n"
        "1: csrci sstatus, 2\n lbu t0, 0(%[flag])\n bnez t0, 2f\n wfi\n csrsi sstatus, 2\n j 1b\n"
        "2: csrsi sstatus, 2\n"
        "fsd ft0, 0(%[out])\n fsd ft1, 8(%[out])\n fsd fs0, 16(%[out])\n fsd fa0, 24(%[out])\n"
        :
        : [in] "r"(in), [out] "r"(out), [flag] "r"(&g_timer_fired)
        : "t0", "ft0", "ft1", "fs0", "fa0", "memory");
    plat::timer::set_handler(previous_handler);
    plat::timer::arm(plat::timer::now()); // fire at once: the owner re-arms for its own events
    ASSERT_TRUE(g_timer_fired);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], in[i]);
}

KTEST(arch, irq_guard_nests_and_restores) {
    ASSERT_TRUE(arch::irqs_enabled());
    {
        arch::IrqGuard outer;
        EXPECT_FALSE(arch::irqs_enabled());
        {
            arch::IrqGuard inner;
            EXPECT_FALSE(arch::irqs_enabled());
        }
        EXPECT_FALSE(arch::irqs_enabled()); // inner must not re-enable
    }
    EXPECT_TRUE(arch::irqs_enabled());
}

KTEST(arch, spinlock_protected_data) {
    arch::SpinlockProtected<int> counter(5);
    int seen = counter.with([&](int& v) {
        EXPECT_FALSE(arch::irqs_enabled());
        return ++v;
    });
    EXPECT_EQ(seen, 6);
    EXPECT_TRUE(arch::irqs_enabled());
    arch::Spinlock lock;
    lock.lock();
    EXPECT_TRUE(lock.is_locked());
    lock.unlock();
    EXPECT_FALSE(lock.is_locked());
}

KTEST(arch, sbi_base_and_probes) {
    auto v = arch::sbi::spec_version();
    EXPECT_TRUE(v.major > 0 || v.minor >= 2); // HSM/SRST need SBI >= 0.2/0.3
    EXPECT_TRUE(arch::sbi::probe(arch::sbi::Extension::Timer));
    EXPECT_TRUE(arch::sbi::probe(arch::sbi::Extension::Ipi));
    EXPECT_TRUE(arch::sbi::probe(arch::sbi::Extension::Hsm));
    EXPECT_TRUE(arch::sbi::probe(arch::sbi::Extension::Srst));
    EXPECT_TRUE(arch::sbi::probe(arch::sbi::Extension::Rfence));
    EXPECT_FALSE(arch::sbi::probe(static_cast<arch::sbi::Extension>(0x12345678)));
    EXPECT_EQ(arch::sbi::impl_id(), 1); // OpenSBI
}

KTEST(arch, sbi_hsm_reports_this_hart_started) {
    auto status = arch::sbi::hart_status(arch::this_hart().hart_id);
    ASSERT_OK(status);
    EXPECT_EQ(static_cast<long>(status.value()), static_cast<long>(arch::sbi::HartState::Started));
    EXPECT_ERROR(arch::sbi::hart_status(4096), base::Error::InvalidArgument);
}

KTEST(arch, exception_names) {
    EXPECT_EQ(arch::exception_name(2), std::string_view("illegal instruction"));
    EXPECT_EQ(arch::exception_name(13), std::string_view("load page fault"));
    EXPECT_EQ(arch::exception_name(63), std::string_view("unknown exception"));
}

namespace {
volatile bool g_ipi_seen = false;
void on_software_interrupt(arch::TrapFrame&) {
    arch::csr_clear<arch::Csr::sip>(arch::sie_bit(arch::Interrupt::Software)); // acknowledge
    g_ipi_seen = true;
}
} // namespace

KTEST(arch, sbi_ipi_to_self_raises_software_interrupt) {
    g_ipi_seen = false;
    // Put back whatever owned the software interrupt (the smp library, in
    // images that have it), or other harts' IPIs would find no handler.
    arch::InterruptHandler previous = arch::interrupt_handler(arch::Interrupt::Software);
    arch::set_interrupt_handler(arch::Interrupt::Software, on_software_interrupt);
    auto sent = arch::sbi::send_ipi(1, arch::this_hart().hart_id);
    for (int spins = 0; sent.ok() && spins < 1000000 && !g_ipi_seen; ++spins) arch::pause();
    arch::set_interrupt_handler(arch::Interrupt::Software, previous);
    ASSERT_OK(sent);
    EXPECT_TRUE(g_ipi_seen);
}

KTEST(arch, this_hart_is_running_and_indexed) {
    const arch::Hart& h = arch::this_hart();
    EXPECT_EQ(h.index, 0u); // ktest cases run on the boot hart
    ASSERT_LT(h.hart_id, 64u);
    EXPECT_TRUE(arch::running_hart_mask() & (std::uint64_t(1) << h.hart_id));
    EXPECT_NE(h.stack_limit, 0u);
}

KTEST(arch, sbi_remote_sfence_vma_on_this_hart) {
    // The firmware accepts a remote fence aimed at the caller itself (it
    // flushes locally), over a range and over everything.
    std::uint64_t self = std::uint64_t(1) << arch::this_hart().hart_id;
    EXPECT_OK(arch::sbi::remote_sfence_vma(self, 0, 0x80200000, 4096));
    EXPECT_OK(arch::sbi::remote_sfence_vma(self, 0, 0, ~std::uint64_t(0)));
}

namespace {
unsigned clz_by_bits(std::uint64_t x) {
    unsigned n = 0;
    for (std::uint64_t bit = 1ull << 63; bit && !(x & bit); bit >>= 1) ++n;
    return n;
}
} // namespace

// __builtin_clz(ll) calls __clzdi2 on rv64gc: ours (src/clz.S), not libgcc's.
KTEST(arch, clz_matches_a_bit_count) {
    unsigned failures = 0;
    auto check = [&](std::uint64_t v) {
        volatile std::uint64_t x = v; // keep the compiler from folding the call
        unsigned got = static_cast<unsigned>(__builtin_clzll(x));
        if (got != clz_by_bits(v) && failures++ == 0) EXPECT_EQ(got, clz_by_bits(v));
    };
    for (unsigned i = 0; i < 64; ++i) {
        check(1ull << i);           // exactly one bit
        check(~0ull >> (63 - i));   // that bit and every lower one
        check((1ull << i) | 1);     // that bit and the lowest
    }
    ktest::Random random;
    for (int i = 0; i < 2000; ++i) {
        std::uint64_t v = random.next() >> (random.next() % 64); // every length
        if (v) check(v);
    }
    EXPECT_EQ(failures, 0u);
    volatile std::uint32_t bitmap = 0x0001'0400u; // the scheduler's use: 32-bit priority bitmaps
    EXPECT_EQ(31 - __builtin_clz(bitmap), 16);
}

namespace {
volatile unsigned g_software_interrupts = 0;
void count_software_interrupt(arch::TrapFrame&) {
    arch::csr_clear<arch::Csr::sip>(arch::sie_bit(arch::Interrupt::Software)); // acknowledge
    g_software_interrupts = g_software_interrupts + 1;
}
bool sie_set() { return arch::csr_read<arch::Csr::sstatus>() & arch::sstatus::SIE; }
} // namespace

// Lazy masking: masking leaves SIE set, so an interrupt that comes in a
// masked section traps, and the trap vector holds it back (SIE cleared for
// the rest of the section, the interrupt left pending); wfi still wakes for
// it; the unmask takes it.
KTEST(arch, an_interrupt_while_masked_is_held_until_the_unmask) {
    ASSERT_TRUE(arch::irqs_enabled());
    ASSERT_TRUE(sie_set());
    arch::InterruptHandler previous = arch::interrupt_handler(arch::Interrupt::Software);
    arch::set_interrupt_handler(arch::Interrupt::Software, count_software_interrupt);
    g_software_interrupts = 0;
    unsigned handled_while_masked = ~0u, handled_after_wfi = ~0u;
    std::uint64_t held = 0;
    bool sie_before = false, sie_after = true;
    {
        arch::IrqGuard masked;
        const std::uint64_t held_before = arch::this_hart().interrupts_held; // no migration while masked
        sie_before = sie_set();
        arch::csr_set<arch::Csr::sip>(arch::sie_bit(arch::Interrupt::Software)); // raise one on this hart
        for (int i = 0; i < 1000; ++i) arch::pause();
        handled_while_masked = g_software_interrupts;
        held = arch::this_hart().interrupts_held - held_before;
        sie_after = sie_set();
        arch::wfi(); // returns at once: the interrupt is pending
        handled_after_wfi = g_software_interrupts;
    }
    const unsigned handled_after_unmask = g_software_interrupts;
    const bool sie_at_end = sie_set();
    arch::set_interrupt_handler(arch::Interrupt::Software, previous);
    EXPECT_TRUE(sie_before);     // masking did not touch SIE
    EXPECT_EQ(held, 1u);         // the trap came and was held back once
    EXPECT_FALSE(sie_after);     // ... clearing SIE for the rest of the section
    EXPECT_EQ(handled_while_masked, 0u);
    EXPECT_EQ(handled_after_wfi, 0u);
    EXPECT_EQ(handled_after_unmask, 1u);
    EXPECT_TRUE(sie_at_end);
    EXPECT_TRUE(arch::irqs_enabled());
}
