// The boot sequence after arch/riscv64/src/entry.S:
//   per-hart pointer -> early console -> device tree -> init table (sorted
//   at build time) -> interrupts on -> application constructors -> main()
//   -> machine exit with main's status.
// Without a scheduler, main() runs on the boot stack; the scheduler library
// will give it a thread of its own.
#include "internal.hpp"
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <klog/klog.hpp>
#include <plat/boot.hpp>
#include <plat/power.hpp>

extern "C" std::uint64_t g_boot_entry_time;
extern "C" std::uint64_t g_boot_entry_instret;
extern "C" void (*__init_array_start[])();
extern "C" void (*__init_array_end[])();
extern "C" char __boot_stack_bottom[];

int main();

// Seeds the stack canary (libs/stackprot). It must run before any function
// built with the stack protector has a live frame that could still return,
// since that frame would see the canary change under it: called first
// thing below, the only such frame is tessera_boot's own, which never
// returns. (The init table is too late: run_init_steps() is a protected
// frame at -Og.) A no-op without the library.
extern "C" [[gnu::weak]] void tessera_seed_stack_guard(const void*) {}

// Runs main() on the boot stack and stops the machine with its status. The
// scheduler library overrides it to give main() a thread of its own (the
// boot context then becomes the idle thread).
extern "C" [[gnu::weak]] [[noreturn]] void tessera_run_main() {
    tessera::plat::boot::finish_main(main());
}

namespace tessera::plat {

namespace {

constexpr std::size_t kMaxInitSteps = 64;
constinit std::uint64_t g_step_instructions[kMaxInitSteps] = {};

void run_init_steps() {
    VERIFY(boot::init_steps().size() <= kMaxInitSteps);
    std::size_t i = 0;
    for (const boot::InitStep& step : boot::init_steps()) {
        std::uint64_t start = arch::rdinstret();
        auto result = step.run();
        g_step_instructions[i++] = arch::rdinstret() - start;
        if (!result.ok()) {
            klog::error("init step {} ({}) failed: {}", step.name, step.component, result.error());
            PANIC("an init step failed");
        }
        klog::debug("init: {} done", step.name);
    }
}

void run_constructors() {
    for (auto* ctor = __init_array_start; ctor != __init_array_end; ++ctor) (*ctor)();
}

} // namespace

void boot::finish_main(int status) {
    arch::irq_disable();
    klog::debug("main() returned {}", status);
    // QEMU's exit status has 8 bits; a non-zero status must never wrap to
    // 0 (a pass), so e.g. 256 becomes 1.
    int exit_status = status & 0xff;
    if (status != 0 && exit_status == 0) exit_status = 1;
    exit_machine(exit_status);
}

std::span<const std::uint64_t> boot::init_step_instructions() {
    return {g_step_instructions, boot::init_steps().size()};
}

} // namespace tessera::plat

using namespace tessera;

extern "C" [[noreturn]] void tessera_boot(std::uint64_t hart_id, const void* dtb) {
    arch::init_hart(0, hart_id, reinterpret_cast<std::uint64_t>(__boot_stack_bottom));
    plat::console::init_early(CONFIG_PLAT_EARLY_UART_BASE);
    tessera_seed_stack_guard(dtb);
    plat::mutable_boot_times().entry_ticks = g_boot_entry_time;
    plat::mutable_boot_times().entry_instret = g_boot_entry_instret;

    if (auto r = plat::discover(dtb, hart_id); !r.ok()) {
        klog::error("device tree at {} is unusable: {}", dtb, r.error());
        PANIC("cannot discover the machine");
    }
    const plat::MachineInfo& m = plat::machine();
    klog::debug("{}: {} hart(s), timebase {} Hz, {} MiB at {:#x}, sstc {}", m.model, m.hart_count,
                m.timebase_hz, m.memory[0].size >> 20, m.memory[0].base, m.has_sstc);

    plat::run_init_steps();
    arch::irq_enable();
    plat::run_constructors();
    auto& times = plat::mutable_boot_times();
    times.main_instret = arch::rdinstret();
    times.main_ticks = arch::rdtime();

    tessera_run_main();
}
