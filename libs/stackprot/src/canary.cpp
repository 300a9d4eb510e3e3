// The stack canary: its storage, its seeding at boot, and the boot log line
// saying where it came from.
//
// When to seed. The value must never change under a live frame that has
// already stored the old one, or that frame's check fails on return though
// nothing was smashed. An init step would be too late: run_init_steps() is
// a live protected frame while the steps run (at -Og it is not inlined and
// has a local array). So plat/qemu-virt's tessera_boot() calls
// tessera_seed_stack_guard() right after the early console is up and
// before anything else: the only protected frame live then is
// tessera_boot's own, which never returns and so never checks.
//
// This file is built with -fno-stack-protector. The fdt functions called
// below are protected, but they all return before the new value is stored.
#include "canary.hpp"
#include <arch/csr.hpp>
#include <fdt/fdt.hpp>
#include <klog/klog.hpp>
#include <stackprot/stackprot.hpp>

// What protected functions compare against (-mstack-protector-guard=global).
// 0 until seeded. Only tessera_seed_stack_guard() writes it, once, on the
// boot hart before any other hart runs; afterwards it is read-only.
extern "C" {
constinit std::uintptr_t __stack_chk_guard = 0;
}

namespace tessera::stackprot {

namespace {
constinit SeedInfo g_seed_info = {SeedSource::None, 0};

// QEMU's virt machine puts 32 random bytes from the host there at every
// start (and a new set on reset); so does U-Boot with an RNG driver.
std::span<const std::uint8_t> find_rng_seed(const void* dtb) {
    auto blob = fdt::Blob::from_address(dtb);
    if (!blob.ok()) return {}; // plat::discover() reports a bad tree
    auto chosen = blob.value().find_path("/chosen");
    if (!chosen.ok()) return {};
    auto seed = chosen.value().property("rng-seed");
    if (!seed.ok()) return {};
    return seed.value().value;
}
} // namespace

SeedInfo seed_info() { return g_seed_info; }

base::Result<void> init_report() {
    switch (g_seed_info.source) {
    case SeedSource::RngSeed:
        klog::info("stackprot: canary seeded from /chosen/rng-seed ({} bytes) and the time counters",
                   g_seed_info.rng_seed_bytes);
        break;
    case SeedSource::CountersOnly:
        klog::warn("stackprot: no /chosen/rng-seed in the device tree: canary seeded from the time "
                   "counters only (guessable)");
        break;
    case SeedSource::None:
        // The boot sequence did not call the seeding hook: canaries are 0.
        PANIC("stackprot: the stack canary was never seeded");
    }
    return {};
}

} // namespace tessera::stackprot

using namespace tessera;

// Called once by tessera_boot() (plat/qemu-virt/src/boot.cpp), see above.
extern "C" void tessera_seed_stack_guard(const void* dtb) {
    std::span<const std::uint8_t> seed = stackprot::find_rng_seed(dtb);
    // The seed is left in the device tree. In one address space any code
    // that could read it there could read __stack_chk_guard just as well;
    // what must not happen is showing the tree to the outside (a future
    // /proc/device-tree should hide rng-seed).
    std::uint64_t canary = stackprot::detail::derive_canary(seed, arch::rdtime(), arch::rdcycle());
    stackprot::g_seed_info = {seed.empty() ? stackprot::SeedSource::CountersOnly : stackprot::SeedSource::RngSeed,
                              seed.size()};
    __stack_chk_guard = canary;
}
