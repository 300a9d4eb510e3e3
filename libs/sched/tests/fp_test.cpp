// FP state across context switches. The switch saves fs0-fs11 and fcsr only
// when sstatus.FS says the thread wrote them (arch/riscv64/src/switch.S), so
// these cases hold FP values in the registers across every kind of switch:
// voluntary (yield, with FS Dirty and with FS Clean), preemption at the exit
// of the round-robin timer interrupt (with the values only in registers and
// the trap frame), and migration to another hart. Each thread uses its own
// values and its own rounding mode, and the values change every round, so
// a stale copy or another thread's registers show up as a mismatch.
//
// The FP registers are loaded, held and read back inside one asm statement
// (the exception to "asm only in arch/": nothing else can hold a value in a
// given register across a call), so the compiler cannot spill or reuse them
// in between: only the switch keeps them.
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <arch/sbi.hpp>
#include <arch/trap.hpp>
#include <atomic>
#include <cstdint>
#include <ktest/ktest.hpp>
#include <plat/timer.hpp>
#include <sched/sched.hpp>

using namespace tessera;

namespace {

struct FpRegs {
    std::uint64_t f[32] = {};
    std::uint64_t fcsr = 0; // frm in bits 7:5, accrued flags in 4:0
};
static_assert(sizeof(FpRegs) == 33 * 8, "the asm below uses offset 256 for fcsr");

// fs0-fs11 are f8, f9 and f18-f27.
constexpr unsigned kCalleeSaved[] = {8, 9, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27};
constexpr unsigned kAll[] = {0,  1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11, 12, 13, 14, 15,
                             16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31};

// Values unique to (thread, round, register), and a rounding mode per thread
// (1 RTZ, 2 RDN, 3 RUP, 4 RMM; never the default RNE) with flags per round.
FpRegs pattern(unsigned thread, unsigned round) {
    FpRegs r;
    for (unsigned i = 0; i < 32; ++i)
        r.f[i] = 0x5a00'0000'0000'0000ull | std::uint64_t(thread) << 40 | std::uint64_t(round) << 16 | i;
    r.fcsr = (1 + thread % 4) << 5 | ((round + thread) & 0x1f);
    return r;
}

// Loads fs0-fs11 and fcsr from `in`, calls fn(arg), stores them to `out`.
// Every caller-saved register is clobbered (fn is any function); the inputs
// therefore live in callee-saved registers, which jalr may use.
void call_holding_fs(const FpRegs& in, FpRegs& out, void (*fn)(void*), void* arg) {
    asm volatile("fld fs0, 64(%[in])\n fld fs1, 72(%[in])\n fld fs2, 144(%[in])\n fld fs3, 152(%[in])\n"
                 "fld fs4, 160(%[in])\n fld fs5, 168(%[in])\n fld fs6, 176(%[in])\n fld fs7, 184(%[in])\n"
                 "fld fs8, 192(%[in])\n fld fs9, 200(%[in])\n fld fs10, 208(%[in])\n fld fs11, 216(%[in])\n"
                 "ld t0, 256(%[in])\n fscsr t0\n"
                 "mv a0, %[arg]\n jalr %[fn]\n"
                 "fsd fs0, 64(%[out])\n fsd fs1, 72(%[out])\n fsd fs2, 144(%[out])\n fsd fs3, 152(%[out])\n"
                 "fsd fs4, 160(%[out])\n fsd fs5, 168(%[out])\n fsd fs6, 176(%[out])\n fsd fs7, 184(%[out])\n"
                 "fsd fs8, 192(%[out])\n fsd fs9, 200(%[out])\n fsd fs10, 208(%[out])\n fsd fs11, 216(%[out])\n"
                 "frcsr t0\n sd t0, 256(%[out])\n"
                 :
                 : [in] "r"(&in), [out] "r"(&out), [fn] "r"(fn), [arg] "r"(arg)
                 : "ra", "t0", "t1", "t2", "t3", "t4", "t5", "t6", "a0", "a1", "a2", "a3", "a4", "a5", "a6",
                   "a7", "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12", "f13",
                   "f14", "f15", "f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23", "f24", "f25", "f26",
                   "f27", "f28", "f29", "f30", "f31", "memory");
}

// Loads all 32 FP registers and fcsr from `in`, spins (no calls: an
// interrupt is the only way off the hart) until *watch differs from `seen`
// or `limit` iterations pass, and stores them to `out`. True if *watch
// changed, i.e. (on one hart) another thread ran while this one was
// preempted in the loop.
bool spin_holding_all_fp(const FpRegs& in, FpRegs& out, const std::atomic<std::uint64_t>& watch,
                         std::uint64_t seen, std::uint64_t limit) {
    static_assert(sizeof(std::atomic<std::uint64_t>) == 8 && std::atomic<std::uint64_t>::is_always_lock_free);
    std::uint64_t left = limit;
    asm volatile("fld f0, 0(%[in])\n fld f1, 8(%[in])\n fld f2, 16(%[in])\n fld f3, 24(%[in])\n"
                 "fld f4, 32(%[in])\n fld f5, 40(%[in])\n fld f6, 48(%[in])\n fld f7, 56(%[in])\n"
                 "fld f8, 64(%[in])\n fld f9, 72(%[in])\n fld f10, 80(%[in])\n fld f11, 88(%[in])\n"
                 "fld f12, 96(%[in])\n fld f13, 104(%[in])\n fld f14, 112(%[in])\n fld f15, 120(%[in])\n"
                 "fld f16, 128(%[in])\n fld f17, 136(%[in])\n fld f18, 144(%[in])\n fld f19, 152(%[in])\n"
                 "fld f20, 160(%[in])\n fld f21, 168(%[in])\n fld f22, 176(%[in])\n fld f23, 184(%[in])\n"
                 "fld f24, 192(%[in])\n fld f25, 200(%[in])\n fld f26, 208(%[in])\n fld f27, 216(%[in])\n"
                 "fld f28, 224(%[in])\n fld f29, 232(%[in])\n fld f30, 240(%[in])\n fld f31, 248(%[in])\n"
                 "ld t0, 256(%[in])\n fscsr t0\n"
                 "1: ld t0, 0(%[watch])\n bne t0, %[seen], 2f\n addi %[left], %[left], -1\n bnez %[left], 1b\n"
                 "2: fsd f0, 0(%[out])\n fsd f1, 8(%[out])\n fsd f2, 16(%[out])\n fsd f3, 24(%[out])\n"
                 "fsd f4, 32(%[out])\n fsd f5, 40(%[out])\n fsd f6, 48(%[out])\n fsd f7, 56(%[out])\n"
                 "fsd f8, 64(%[out])\n fsd f9, 72(%[out])\n fsd f10, 80(%[out])\n fsd f11, 88(%[out])\n"
                 "fsd f12, 96(%[out])\n fsd f13, 104(%[out])\n fsd f14, 112(%[out])\n fsd f15, 120(%[out])\n"
                 "fsd f16, 128(%[out])\n fsd f17, 136(%[out])\n fsd f18, 144(%[out])\n fsd f19, 152(%[out])\n"
                 "fsd f20, 160(%[out])\n fsd f21, 168(%[out])\n fsd f22, 176(%[out])\n fsd f23, 184(%[out])\n"
                 "fsd f24, 192(%[out])\n fsd f25, 200(%[out])\n fsd f26, 208(%[out])\n fsd f27, 216(%[out])\n"
                 "fsd f28, 224(%[out])\n fsd f29, 232(%[out])\n fsd f30, 240(%[out])\n fsd f31, 248(%[out])\n"
                 "frcsr t0\n sd t0, 256(%[out])\n"
                 : [left] "+r"(left)
                 : [in] "r"(&in), [out] "r"(&out), [watch] "r"(&watch), [seen] "r"(seen)
                 : "t0", "f0", "f1", "f2", "f3", "f4", "f5", "f6", "f7", "f8", "f9", "f10", "f11", "f12", "f13",
                   "f14", "f15", "f16", "f17", "f18", "f19", "f20", "f21", "f22", "f23", "f24", "f25", "f26",
                   "f27", "f28", "f29", "f30", "f31", "memory");
    return left != 0;
}

std::uint64_t read_fcsr() {
    std::uint64_t v;
    asm volatile("frcsr %0" : "=r"(v)); // a read: leaves FS as it is
    return v;
}

// What a thread saw, reported to the test case (threads cannot use EXPECT).
struct Checker {
    unsigned id = 0;
    std::atomic<unsigned> failures{0};
    unsigned bad_round = 0, bad_reg = 0; // of the first failure; reg 32 is fcsr
    std::uint64_t expected = 0, got = 0;

    template <std::size_t N>
    void check(unsigned round, const FpRegs& in, const FpRegs& out, const unsigned (&regs)[N]) {
        for (unsigned i : regs)
            if (out.f[i] != in.f[i]) record(round, i, in.f[i], out.f[i]);
        if (out.fcsr != in.fcsr) record(round, 32, in.fcsr, out.fcsr);
    }
    void record(unsigned round, unsigned reg, std::uint64_t want, std::uint64_t have) {
        if (failures.fetch_add(1) == 0) {
            bad_round = round;
            bad_reg = reg;
            expected = want;
            got = have;
        }
    }
};

// One failure per thread, naming its first mismatch.
void expect_no_mismatch(ktest::Context& ktest_context, const Checker& c) {
    unsigned failures = c.failures.load();
    if (!failures) return;
    char text[160];
    ktest_context.fail(__FILE__, __LINE__,
                       base::format_into(text, "thread {}: {} mismatches; first in round {}, f{} (f32: fcsr) is {:#x}, "
                                               "expected {:#x}",
                                         c.id, failures, c.bad_round, c.bad_reg, c.got, c.expected));
}

sched::ThreadAttributes pinned(std::string_view name) { return {name, 10, CONFIG_SCHED_STACK_KIB * 1024, 1u}; }

std::uint64_t preemptions_here() { return sched::hart_stats(sched::current_hart()).preemptions; }

// Busy until the round-robin slice ends and another thread runs (bounded).
// Integer code only: the caller's FP state stays in its registers or in the
// trap frame and Context while it is preempted.
bool spin_until_preempted() {
    std::uint64_t before = preemptions_here();
    std::uint64_t give_up = plat::timer::now() + plat::timer::ns_to_ticks(100'000'000);
    while (preemptions_here() == before)
        if (plat::timer::now() > give_up) return false;
    return true;
}

// Switches made inside call_holding_fs. Round r of a worker uses one of:
// - one yield (FS Dirty at the switch: the values were just loaded);
// - three yields (the second and third find FS Clean: nothing is saved and
//   the values must come back from the copy the first one made);
// - a yield, then busy until preempted (the trap is taken with FS Clean,
//   the thread is switched out at interrupt exit and back).
void yield_once(void*) { sched::yield(); }
void yield_thrice(void*) {
    for (int i = 0; i < 3; ++i) sched::yield();
}
void yield_then_spin(void* preempted) {
    sched::yield();
    if (spin_until_preempted()) static_cast<std::atomic<unsigned>*>(preempted)->fetch_add(1);
}

constexpr unsigned kRounds = 30;
std::atomic<unsigned> g_fp_workers_left{0};

struct FpWorker {
    Checker checker;
    std::atomic<unsigned> preempted{0}; // yield_then_spin rounds that were
};

void fp_worker(void* p) {
    auto& w = *static_cast<FpWorker*>(p);
    for (unsigned r = 0; r < kRounds; ++r) {
        FpRegs in = pattern(w.checker.id, r), out;
        void (*fn)(void*) = r % 3 == 0 ? yield_once : r % 3 == 1 ? yield_thrice : yield_then_spin;
        call_holding_fs(in, out, fn, &w.preempted);
        w.checker.check(r, in, out, kCalleeSaved);
    }
    g_fp_workers_left.fetch_sub(1);
}

// Never writes an FP register: whatever the others leave in the registers,
// it must see fcsr = 0 (round to nearest, no flags), not their modes.
struct PlainWorker {
    std::atomic<unsigned> nonzero_fcsr{0};
    std::uint64_t seen = 0;
    unsigned rounds = 0;
};

void plain_worker(void* p) {
    auto& w = *static_cast<PlainWorker*>(p);
    while (g_fp_workers_left.load() != 0) {
        sched::yield();
        if (std::uint64_t f = read_fcsr(); f != 0 && w.nonzero_fcsr.fetch_add(1) == 0) w.seen = f;
        ++w.rounds;
    }
}

} // namespace

KTEST(sched_fp, callee_saved_fp_state_survives_yields_and_preemption) {
    constexpr unsigned kWorkers = 3;
    FpWorker workers[kWorkers];
    PlainWorker plain;
    g_fp_workers_left = kWorkers;
    sched::ThreadHandle h[kWorkers + 1];
    auto before = sched::stats();
    for (unsigned i = 0; i < kWorkers; ++i) {
        workers[i].checker.id = i;
        auto r = sched::spawn(fp_worker, &workers[i], pinned("fp"));
        ASSERT_OK(r);
        h[i] = r.value();
    }
    auto r = sched::spawn(plain_worker, &plain, pinned("no-fp"));
    ASSERT_OK(r);
    h[kWorkers] = r.value();
    for (auto handle : h) ASSERT_OK(sched::join(handle)); // they all run below main's priority
    for (auto& w : workers) {
        expect_no_mismatch(ktest_context, w.checker);
        EXPECT_GT(w.preempted.load(), 0u); // some rounds really were preempted
    }
    EXPECT_EQ(plain.nonzero_fcsr.load(), 0u);
    EXPECT_EQ(plain.seen, 0u);
    EXPECT_GT(plain.rounds, 0u);
    EXPECT_GT(sched::stats().preemptions, before.preemptions);
}

namespace {

// Two threads of one priority hand the hart to each other only through
// timer preemption: each spins, holding all 32 FP registers and fcsr, until
// the other has run. A third spins without FP.
struct Spinner {
    Checker checker;
    std::atomic<std::uint64_t> progress{0};
    Spinner* peer = nullptr;
    unsigned preempted = 0;
};

constexpr unsigned kSpinRounds = 8;
constexpr std::uint64_t kSpinLimit = 50'000'000; // loop turns: far beyond a quantum

void fp_spinner(void* p) {
    auto& s = *static_cast<Spinner*>(p);
    for (unsigned r = 0; r < kSpinRounds; ++r) {
        FpRegs in = pattern(s.checker.id, r), out;
        std::uint64_t seen = s.peer->progress.load();
        s.progress.fetch_add(1); // lets the peer's current spin end
        if (spin_holding_all_fp(in, out, s.peer->progress, seen, kSpinLimit)) ++s.preempted;
        s.checker.check(r, in, out, kAll);
    }
    s.progress.fetch_add(1); // the peer's last spin
}

struct Busy {
    std::atomic<bool> stop{false};
    std::atomic<std::uint64_t> count{0};
};

void busy(void* p) {
    auto& b = *static_cast<Busy*>(p);
    while (!b.stop.load()) b.count.fetch_add(1);
}

} // namespace

KTEST(sched_fp, all_fp_state_survives_preemption_at_interrupt_exit) {
    Spinner a, b;
    a.checker.id = 2; // rounding modes RUP and RMM
    b.checker.id = 3;
    a.peer = &b;
    b.peer = &a;
    Busy plain;
    auto before = sched::stats();
    auto ha = sched::spawn(fp_spinner, &a, pinned("fp-spin-a"));
    auto hb = sched::spawn(fp_spinner, &b, pinned("fp-spin-b"));
    auto hp = sched::spawn(busy, &plain, pinned("busy"));
    ASSERT_OK(ha);
    ASSERT_OK(hb);
    ASSERT_OK(hp);
    ASSERT_OK(sched::join(ha.value()));
    ASSERT_OK(sched::join(hb.value()));
    plain.stop = true;
    ASSERT_OK(sched::join(hp.value()));
    for (Spinner* s : {&a, &b}) {
        expect_no_mismatch(ktest_context, s->checker);
        // Every spin that saw the peer's progress was preempted in the loop
        // (on one hart the peer cannot run otherwise); nearly all are.
        EXPECT_GE(s->preempted, kSpinRounds - 1);
    }
    EXPECT_GT(plain.count.load(), 0u);
    EXPECT_GE(sched::stats().preemptions, before.preemptions + kSpinRounds);
}

namespace {

// Interrupts taken while a thread holds FP state, two ways:
// - right after it wrote its FP registers, with no switch: the trap exit
//   must leave FS Dirty (as it found it), or the next voluntary switch
//   would skip the save and the thread would come back with an older copy;
// - with FS Clean (just switched in), by an interrupt whose handler leaves
//   fcsr changed and wakes a more urgent thread, so the thread is switched
//   out at interrupt exit with the handler's fcsr, then restored from the
//   frame: the exit must not call that Clean, or the next switch would keep
//   the handler's fcsr in the Context.
// The handler scribbles on FP registers and fcsr.
std::atomic<bool> g_wake_urgent{false};
sched::ThreadHandle g_urgent;

void scribbling_ipi_handler(arch::TrapFrame&) {
    arch::csr_clear<arch::Csr::sip>(arch::sie_bit(arch::Interrupt::Software));
    asm volatile("fcvt.d.w fs0, zero\n fcvt.d.w fs5, zero\n fcvt.d.w ft0, zero\n fcvt.d.w fa0, zero\n"
                 "li t0, 0x9f\n fscsr t0\n" // RMM and every flag
                 ::: "t0", "fs0", "fs5", "ft0", "fa0");
    if (g_wake_urgent.load()) (void)sched::unpark(g_urgent); // runs at this interrupt's exit
}

struct Urgent {
    std::atomic<bool> stop{false};
    std::atomic<unsigned> woken{0};
};

void urgent(void* p) {
    auto& u = *static_cast<Urgent*>(p);
    for (;;) {
        sched::park();
        if (u.stop.load()) return;
        u.woken.fetch_add(1);
    }
}

struct Interrupted {
    Checker checker;
    unsigned interrupts = 0;
};

bool interrupt_self() {
    arch::Hart& hart = arch::this_hart();
    std::uint64_t before = hart.interrupts;
    if (!arch::sbi::send_ipi(1, hart.hart_id).ok()) return false;
    for (int i = 0; i < 100'000 && hart.interrupts == before; ++i) arch::pause();
    return hart.interrupts != before;
}

void interrupt_then_yield(void* p) {
    auto& w = *static_cast<Interrupted*>(p);
    if (interrupt_self()) ++w.interrupts;
    sched::yield();
}

void yield_interrupt_preempted_yield(void* p) {
    auto& w = *static_cast<Interrupted*>(p);
    sched::yield();
    g_wake_urgent = true;
    if (interrupt_self()) ++w.interrupts;
    g_wake_urgent = false;
    sched::yield();
}

void interrupted_worker(void* p) {
    auto& w = *static_cast<Interrupted*>(p);
    for (unsigned r = 0; r < kRounds; ++r) {
        FpRegs in = pattern(w.checker.id, r), out;
        call_holding_fs(in, out, r % 2 ? yield_interrupt_preempted_yield : interrupt_then_yield, &w);
        w.checker.check(r, in, out, kCalleeSaved);
    }
}

} // namespace

KTEST(sched_fp, fp_state_survives_interrupts_that_change_it) {
    Urgent u;
    auto hu = sched::spawn(urgent, &u, {"urgent", 30, CONFIG_SCHED_STACK_KIB * 1024, 1u});
    ASSERT_OK(hu);
    g_urgent = hu.value(); // it ran (more urgent than main) and parked
    // Borrowed from its owner (the smp library's IPI dispatcher, if any)
    // and given back below.
    auto previous = arch::interrupt_handler(arch::Interrupt::Software);
    arch::set_interrupt_handler(arch::Interrupt::Software, scribbling_ipi_handler);
    Interrupted one, two;
    one.checker.id = 0;
    two.checker.id = 1;
    auto h1 = sched::spawn(interrupted_worker, &one, pinned("fp-irq-1"));
    auto h2 = sched::spawn(interrupted_worker, &two, pinned("fp-irq-2"));
    if (h1.ok()) EXPECT_OK(sched::join(h1.value()));
    if (h2.ok()) EXPECT_OK(sched::join(h2.value()));
    arch::set_interrupt_handler(arch::Interrupt::Software, previous);
    u.stop = true;
    ASSERT_OK(sched::unpark(hu.value()));
    ASSERT_OK(sched::join(hu.value()));
    ASSERT_OK(h1);
    ASSERT_OK(h2);
    for (Interrupted* w : {&one, &two}) {
        expect_no_mismatch(ktest_context, w->checker);
        EXPECT_EQ(w->interrupts, kRounds); // every round took its interrupt
    }
    EXPECT_EQ(u.woken.load(), kRounds); // half the rounds of each worker preempted it
}

namespace {

// Hops to the next hart (by affinity) inside call_holding_fs: the FP state
// is saved on one hart and must be loaded on the other, whose registers
// hold another thread's state meanwhile.
struct Hopper {
    Checker checker;
    unsigned hops = 0;
};

void hop(void* p) {
    auto& h = *static_cast<Hopper*>(p);
    unsigned target = (sched::current_hart() + 1) % sched::online_harts();
    if (!sched::set_affinity(sched::self(), 1u << target).ok()) return;
    if (sched::current_hart() == target) ++h.hops;
}

void hopper(void* p) {
    auto& h = *static_cast<Hopper*>(p);
    for (unsigned r = 0; r < kRounds; ++r) {
        FpRegs in = pattern(h.checker.id, r), out;
        call_holding_fs(in, out, hop, &h);
        h.checker.check(r, in, out, kCalleeSaved);
    }
}

} // namespace

KTEST(sched_smp, fp_state_follows_threads_that_move_between_harts) {
    Hopper one, two;
    one.checker.id = 0;
    two.checker.id = 1;
    auto h1 = sched::spawn(hopper, &one, {"fp-hop-1", 10});
    auto h2 = sched::spawn(hopper, &two, {"fp-hop-2", 10});
    ASSERT_OK(h1);
    ASSERT_OK(h2);
    ASSERT_OK(sched::join(h1.value()));
    ASSERT_OK(sched::join(h2.value()));
    for (Hopper* h : {&one, &two}) {
        expect_no_mismatch(ktest_context, h->checker);
        if (sched::online_harts() > 1) EXPECT_EQ(h->hops, kRounds); // moved every round
    }
}
