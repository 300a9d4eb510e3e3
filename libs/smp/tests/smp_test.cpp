#include <arch/cpu.hpp>
#include <arch/csr.hpp>
#include <arch/hart.hpp>
#include <atomic>
#include <ktest/ktest.hpp>
#include <mm-buddy/buddy.hpp>
#include <plat/machine.hpp>
#include <smp/smp.hpp>
#if CONFIG_LIB_MMU
#include <mmu/mmu.hpp>
#endif

using namespace tessera;

namespace {

// What the probe IPI handler saw on each hart.
struct Seen {
    std::atomic<unsigned> calls{0};
    unsigned index = ~0u;
    std::uint64_t hart_id = 0;
    const arch::Hart* hart = nullptr;
    std::uintptr_t sp = 0;
    std::uint64_t stack_limit = 0;
    std::uint64_t probed = 0; // *g_probe_address, if set
};
Seen g_seen[arch::kMaxHarts];
std::atomic<const volatile std::uint64_t*> g_probe_address{nullptr};

void probe_handler() {
    arch::Hart& h = arch::this_hart();
    Seen& s = g_seen[h.index];
    volatile char here = 0; // its address is (near) this hart's sp
    s.index = h.index;
    s.hart_id = h.hart_id;
    s.hart = &h;
    s.sp = reinterpret_cast<std::uintptr_t>(&here);
    s.stack_limit = h.stack_limit;
    if (auto* p = g_probe_address.load(std::memory_order_acquire)) s.probed = *p;
    s.calls.fetch_add(1, std::memory_order_release);
}

// Installs the probe handler for one test, puts the previous one back.
struct ProbeHandler {
    smp::IpiHandler previous = smp::set_ipi_handler(probe_handler);
    ~ProbeHandler() { smp::set_ipi_handler(previous); }
};

// Waits (bounded: a lost IPI must fail the case, not hang the run) until
// `done()` holds. Interrupts are on in ktest cases, so the boot hart takes
// its own IPIs meanwhile.
template <typename F>
bool wait_for(F&& done) {
    const std::uint64_t limit = plat::machine().timebase_hz; // 1 s
    const std::uint64_t start = arch::rdtime();
    while (!done())
        if (arch::rdtime() - start > limit) return false;
        else arch::pause();
    return true;
}

// Sends an IPI to `index` and waits for the probe handler to have run there.
bool ping(unsigned index) {
    unsigned before = g_seen[index].calls.load(std::memory_order_acquire);
    if (!smp::send_ipi(index).ok()) return false;
    return wait_for([&] { return g_seen[index].calls.load(std::memory_order_acquire) != before; });
}

} // namespace

KTEST(smp, all_configured_harts_online_with_distinct_ids) {
    const plat::MachineInfo& m = plat::machine();
    EXPECT_EQ(smp::online_harts(), m.hart_count);
    EXPECT_EQ(m.hart_count, unsigned(CONFIG_PLAT_HARTS));
    for (unsigned i = 0; i < m.hart_count; ++i) {
        auto s = smp::hart_stats(i);
        ASSERT_OK(s);
        EXPECT_TRUE(s.value().online);
        EXPECT_TRUE(smp::is_online(i));
        EXPECT_EQ(s.value().hart_id, m.harts[i]);
        EXPECT_LT(s.value().stack_bottom, s.value().stack_top);
        for (unsigned k = 0; k < i; ++k) {
            auto o = smp::hart_stats(k);
            ASSERT_OK(o);
            // Stacks do not overlap.
            EXPECT_TRUE(s.value().stack_top <= o.value().stack_bottom ||
                        o.value().stack_top <= s.value().stack_bottom);
        }
    }
    EXPECT_EQ(smp::hart_stats(0).value().hart_id, arch::this_hart().hart_id);
}

KTEST(smp, each_hart_runs_with_its_own_tp_and_stack) {
    const unsigned n = plat::machine().hart_count;
    if (n == 1) KTEST_SKIP("one hart");
    ProbeHandler probe;
    for (unsigned i = 1; i < n; ++i) {
        auto st = smp::hart_stats(i);
        ASSERT_OK(st);
        // An IPI is handled on the stack of whatever the hart runs: its
        // own stack while idle, a thread's when one (the network thread,
        // an earlier case's worker) happens to be on it. Ping until one
        // lands while it idles; a hart that never idles fails below.
        const Seen& s = g_seen[i];
        for (unsigned attempt = 0; attempt < 200; ++attempt) {
            ASSERT_TRUE(ping(i));
            if (s.stack_limit == st.value().stack_bottom) break;
            const std::uint64_t until = arch::rdtime() + plat::machine().timebase_hz / 1000; // 1 ms
            while (arch::rdtime() < until) arch::pause();
        }
        EXPECT_EQ(s.index, i);
        EXPECT_EQ(s.hart_id, plat::machine().harts[i]);
        EXPECT_NE(s.hart, &arch::this_hart());
        for (unsigned k = 1; k < i; ++k) EXPECT_NE(s.hart, g_seen[k].hart);
        // The handler ran on that hart's own stack, and the trap-entry
        // stack check knows its limit.
        EXPECT_GE(s.sp, st.value().stack_bottom);
        EXPECT_LT(s.sp, st.value().stack_top);
        EXPECT_EQ(s.stack_limit, st.value().stack_bottom);
    }
}

KTEST(smp, an_ipi_to_each_hart_is_received_there) {
    const unsigned n = plat::machine().hart_count;
    ProbeHandler probe;
    for (unsigned i = 0; i < n; ++i) { // the boot hart itself included
        // One IPI sent, taken by the target and by nobody else. The
        // kernel's own IPIs (a thread woken on another hart) may fall in
        // the same window, as one did in a full 4-hart run, so a few
        // attempts are allowed; one must be clean.
        bool clean = false;
        for (unsigned attempt = 0; attempt < 5 && !clean; ++attempt) {
            std::uint64_t received_before[arch::kMaxHarts] = {};
            for (unsigned k = 0; k < n; ++k) received_before[k] = smp::hart_stats(k).value().ipis_received;
            auto sent_before = smp::hart_stats(0).value().ipis_sent;
            ASSERT_TRUE(ping(i));
            EXPECT_EQ(g_seen[i].index, i);
            clean = smp::hart_stats(0).value().ipis_sent == sent_before + 1;
            for (unsigned k = 0; k < n; ++k)
                clean = clean && smp::hart_stats(k).value().ipis_received == received_before[k] + (k == i ? 1 : 0);
        }
        EXPECT_TRUE(clean);
    }
}

KTEST(smp, ipis_to_invalid_harts_are_rejected) {
    const unsigned n = plat::machine().hart_count;
    auto sent_before = smp::hart_stats(0).value().ipis_sent;
    EXPECT_ERROR(smp::send_ipi(n), base::Error::InvalidArgument);
    EXPECT_ERROR(smp::send_ipi(arch::kMaxHarts), base::Error::InvalidArgument);
    EXPECT_ERROR(smp::send_ipi(~0u), base::Error::InvalidArgument);
    EXPECT_ERROR(smp::hart_stats(n), base::Error::InvalidArgument);
    EXPECT_FALSE(smp::is_online(n));
    EXPECT_EQ(smp::hart_stats(0).value().ipis_sent, sent_before);
}

#if CONFIG_LIB_MMU
KTEST(smp, guarded_stacks_shoot_down_every_other_hart) {
    const unsigned n = plat::machine().hart_count;
    auto before = mmu::stats().shootdowns;
    auto stack = mmu::alloc_stack(8192); // unmaps the guard page
    ASSERT_OK(stack);
    mmu::free_stack(stack.value());      // maps it again
    EXPECT_EQ(mmu::stats().shootdowns - before, n > 1 ? 2u : 0u);
    // Every hart is still alive and taking interrupts (a fault on any of
    // them would have stopped the machine).
    ProbeHandler probe;
    for (unsigned i = 1; i < n; ++i) EXPECT_TRUE(ping(i));
}

// The shootdown is what makes this pass: each secondary reads `va` (caching
// its translation), the boot hart points `va` at another page, and the
// secondary must read through the new mapping at once.
KTEST(smp, a_remap_is_seen_by_every_hart_at_once) {
    const unsigned n = plat::machine().hart_count;
    if (n == 1) KTEST_SKIP("one hart");
    void* pages[3] = {};
    for (auto*& p : pages) {
        auto r = mm_buddy::alloc_pages(0);
        ASSERT_OK(r);
        p = r.value();
    }
    auto* va_page = static_cast<std::uint64_t*>(pages[0]);
    auto* other = static_cast<std::uint64_t*>(pages[1]);
    auto* third = static_cast<std::uint64_t*>(pages[2]);
    *va_page = 0x1111;
    *other = 0x2222;
    *third = 0x3333;
    const auto va = reinterpret_cast<std::uintptr_t>(va_page);
    ProbeHandler probe;
    g_probe_address.store(va_page, std::memory_order_release);
    const std::uintptr_t targets[] = {va, reinterpret_cast<std::uintptr_t>(other),
                                      reinterpret_cast<std::uintptr_t>(third), va};
    const std::uint64_t expected[] = {0x1111, 0x2222, 0x3333, 0x1111};
    for (unsigned step = 0; step < 4; ++step) {
        if (step > 0) ASSERT_OK(mmu::map(va, targets[step], mm_buddy::kPageSize, mmu::Access::ReadWrite));
        for (unsigned i = 1; i < n; ++i) {
            ASSERT_TRUE(ping(i));
            EXPECT_EQ(g_seen[i].probed, expected[step]);
        }
    }
    g_probe_address.store(nullptr, std::memory_order_release);
    for (void* p : pages) mm_buddy::free_pages(p);
}
#endif
