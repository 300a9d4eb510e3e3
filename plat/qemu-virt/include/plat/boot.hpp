#pragma once
// The boot sequence's two generated tables: the init steps of the enabled
// components, sorted at build time (support/gen.py, `make boot-order`), and
// the manifest of what the image contains.
#include <base/result.hpp>
#include <span>
#include <string_view>

namespace tessera::plat::boot {

struct InitStep {
    std::string_view name;      // "plat.irq"
    std::string_view component; // "plat", "klog", "app"...
    base::Result<void> (*run)();
};

struct ConfigEntry {
    std::string_view name;  // without the CONFIG_ prefix
    std::string_view value;
};

struct Manifest {
    std::string_view app;
    std::string_view version;
    std::string_view compiler;
    std::span<const std::string_view> libraries;
    std::span<const ConfigEntry> config;
};

std::span<const InitStep> init_steps();
const Manifest& manifest();

// Stops the machine with main()'s return value as the exit status (a
// non-zero status never becomes 0). Whoever runs main() calls this.
[[noreturn]] void finish_main(int status);

// Guest instructions each init step took (rdinstret; exact under QEMU
// -icount), in init_steps() order. For boot-cost benchmarks.
std::span<const std::uint64_t> init_step_instructions();

} // namespace tessera::plat::boot

// What a secondary hart runs once it is up (libs/smp): called on the
// hart's own stack, with tp set (arch::this_hart().index == index), the
// kernel's page table loaded, the software and timer interrupts enabled in
// sie but sstatus.SIE still clear. Must not return. The smp library's weak
// default enables interrupts and waits in wfi forever; a scheduler defines
// it to run that hart's idle loop (and installs its interrupt-exit hook
// there: arch::set_interrupt_exit_hook is per hart).
extern "C" [[noreturn]] void tessera_secondary_run(unsigned index);
