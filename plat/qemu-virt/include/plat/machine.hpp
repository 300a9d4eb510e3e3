#pragma once
// What the device tree says about this machine, read once at boot.
#include <arch/hart.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera::plat {

struct MemoryRegion {
    std::uint64_t base;
    std::uint64_t size;
};

struct VirtioSlot {
    std::uint64_t base;
    std::uint64_t size;
    std::uint32_t irq;
};

struct MachineInfo {
    std::string_view model;
    std::string_view bootargs;   // /chosen/bootargs
    const void* dtb;
    std::size_t dtb_size;
    std::uint64_t boot_hart;
    // The harts the kernel can run on, by platform hart id (the `reg` of
    // /cpus/cpu@N), boot hart first: a hart's position here is its dense
    // index (arch::Hart::index), so index 0 is always the boot hart.
    // Skipped: status other than "okay", no mmu-type (or "riscv,none": no
    // S-mode paging), and harts beyond the first arch::kMaxHarts (warned).
    // hart_count entries are valid.
    std::uint64_t harts[arch::kMaxHarts];
    unsigned hart_count;
    std::uint64_t timebase_hz;
    bool has_sstc;               // "sstc" in the boot hart's riscv,isa
    MemoryRegion memory[4];
    unsigned memory_count;
    // Memory the kernel must not hand out besides its own image and the
    // device tree: the FDT reservation block and /reserved-memory children
    // (OpenSBI protects its own region this way). Extra entries are dropped
    // with a warning at boot, never silently.
    MemoryRegion reserved[8];
    unsigned reserved_count;
    std::uint64_t uart_base;
    std::uint32_t uart_irq;
    std::uint64_t plic_base;
    std::uint64_t plic_size;
    std::uint32_t plic_sources;  // riscv,ndev
    std::uint32_t plic_context;  // S-mode context of the boot hart
    std::uint64_t test_base;     // sifive,test0 (0 if absent)
    VirtioSlot virtio[8];
    unsigned virtio_count;
};

namespace detail {
extern MachineInfo g_machine; // filled once by discovery at boot, read-only after
}
// Inline: the PLIC and the timer read it on every interrupt and every
// time conversion.
inline const MachineInfo& machine() { return detail::g_machine; }

// Time stamps for boot benchmarks (rdtime / rdinstret values).
// Under QEMU -icount the instret values are exact guest instruction counts
// since reset (OpenSBI included).
struct BootTimes {
    std::uint64_t entry_ticks;
    std::uint64_t entry_instret;
    std::uint64_t main_ticks;
    std::uint64_t main_instret;
};
const BootTimes& boot_times();

// Looks up key=value on the kernel command line; empty if absent.
std::string_view boot_option(std::string_view key);
bool has_boot_option(std::string_view key);

} // namespace tessera::plat
