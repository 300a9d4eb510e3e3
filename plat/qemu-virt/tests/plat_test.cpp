#include <arch/cpu.hpp>
#include <ktest/ktest.hpp>
#include <plat/irq.hpp>
#include <plat/machine.hpp>
#include <plat/timer.hpp>

using namespace tessera;

namespace {
volatile std::uint64_t g_fired_at = 0;
void record_time() { g_fired_at = plat::timer::now(); }

// These tests borrow the hardware timer from its owner (the time library,
// when enabled), whose pending events it was armed for: fire at once so the
// owner's handler re-arms it for them.
void hand_back_the_timer() { plat::timer::arm(plat::timer::now()); }
void noop(void*) {}
} // namespace

KTEST(plat, machine_discovered_from_device_tree) {
    const plat::MachineInfo& m = plat::machine();
    EXPECT_EQ(m.memory_count, 1u);
    EXPECT_EQ(m.memory[0].base, 0x80000000u);
    EXPECT_GE(m.memory[0].size, 16u << 20);
    EXPECT_EQ(m.timebase_hz, 10000000u);
    EXPECT_EQ(m.uart_base, 0x10000000u);
    EXPECT_EQ(m.uart_irq, 10u);
    EXPECT_EQ(m.plic_base, 0x0c000000u);
    EXPECT_GT(m.plic_sources, 32u);
    EXPECT_EQ(m.test_base, 0x100000u);
    EXPECT_EQ(m.virtio_count, 8u);
    EXPECT_EQ(m.virtio[0].base, 0x10001000u);
    EXPECT_GE(m.hart_count, 1u);
}

// The ktest image always runs with its configured -smp (qemu.json).
KTEST(plat, usable_harts_listed_boot_hart_first) {
    const plat::MachineInfo& m = plat::machine();
    EXPECT_EQ(m.hart_count, unsigned(CONFIG_PLAT_HARTS));
    ASSERT_LE(m.hart_count, arch::kMaxHarts);
    EXPECT_EQ(m.harts[0], m.boot_hart);
    EXPECT_EQ(m.harts[0], arch::this_hart().hart_id);
    for (unsigned i = 0; i < m.hart_count; ++i)
        for (unsigned k = i + 1; k < m.hart_count; ++k) EXPECT_NE(m.harts[i], m.harts[k]);
}

KTEST(plat, oneshot_timer_fires_after_deadline) {
    auto previous_handler = plat::timer::set_handler(record_time);
    auto before = plat::timer::stats();
    for (int round = 0; round < 5; ++round) {
        g_fired_at = 0;
        std::uint64_t deadline = plat::timer::now() + plat::timer::ns_to_ticks(200000); // 200 us
        plat::timer::arm(deadline);
        arch::wait_until([] { return g_fired_at != 0; });
        EXPECT_GE(g_fired_at, deadline);
    }
    auto after = plat::timer::stats();
    EXPECT_EQ(after.fired, before.fired + 5);
    plat::timer::set_handler(previous_handler);
    hand_back_the_timer();
}

KTEST(plat, rearming_same_deadline_is_skipped) {
    std::uint64_t far = plat::timer::now() + plat::timer::ns_to_ticks(1000000000);
    plat::timer::arm(far);
    auto once = plat::timer::stats();
    plat::timer::arm(far);
    plat::timer::arm(far);
    auto twice = plat::timer::stats();
    EXPECT_EQ(twice.programmed, once.programmed);
    EXPECT_EQ(twice.skipped, once.skipped + 2);
    hand_back_the_timer();
}

KTEST(plat, time_conversions_round_trip) {
    EXPECT_EQ(plat::timer::ns_to_ticks(1000000000), plat::timer::frequency());
    EXPECT_EQ(plat::timer::ticks_to_ns(plat::timer::frequency() * 3600 * 24 * 365), 3600ull * 24 * 365 * 1000000000);
    EXPECT_EQ(plat::timer::ticks_to_ns(plat::timer::ns_to_ticks(123456700)), 123456700u);
}

KTEST(plat, irq_attach_validates) {
    EXPECT_ERROR(plat::irq::attach(0, noop, nullptr), base::Error::OutOfRange);
    EXPECT_ERROR(plat::irq::attach(100000, noop, nullptr), base::Error::OutOfRange);
    EXPECT_ERROR(plat::irq::attach(5, nullptr, nullptr), base::Error::InvalidArgument);
    std::uint32_t line = plat::machine().virtio[7].irq;
    ASSERT_OK(plat::irq::attach(line, noop, nullptr));
    EXPECT_ERROR(plat::irq::attach(line, noop, nullptr), base::Error::Busy);
    plat::irq::detach(line);
    EXPECT_OK(plat::irq::attach(line, noop, nullptr));
    plat::irq::detach(line);
    // The console line is taken by the UART receive path.
    EXPECT_ERROR(plat::irq::attach(plat::machine().uart_irq, noop, nullptr), base::Error::Busy);
}

KTEST(plat, timer_path_matches_device_tree) {
    EXPECT_EQ(plat::timer::stats().uses_sstc, plat::machine().has_sstc);
}

KTEST(plat, many_short_timers_never_lose_a_wakeup) {
    // Deadlines at or just past "now" make the interrupt land right around
    // the sleep: the window in which a naive check-then-wfi loop loses the
    // wake-up and hangs (regression: this hung the suite under host load).
    auto previous_handler = plat::timer::set_handler(record_time);
    for (int i = 0; i < 500; ++i) {
        g_fired_at = 0;
        plat::timer::arm(plat::timer::now() + static_cast<std::uint64_t>(i % 3));
        arch::wait_until([] { return g_fired_at != 0; });
    }
    plat::timer::set_handler(previous_handler);
    EXPECT_TRUE(arch::irqs_enabled());
}
