#pragma once
// The kernel's address space: one Sv39 table, identity-mapped (virtual =
// physical), built at boot by the mmu.enable init step.
//
//   kernel text             R X       rodata, init tables, ktest cases   R
//   data, bss, stacks, RAM  R W       devices from the device tree       R W
//   below the image, page zero, boot stack guard: unmapped
//
// No mapping is ever both writable and executable (W^X). map()/unmap()
// change single ranges later; a 2 MiB page is split into 4 KiB pages on
// demand. Page-table pages come from mm-buddy.
//
// SMP: one table for all harts. Updates take one spinlock, flush this
// hart's TLB, and, while other harts run kernel code
// (arch::running_hart_mask()), shoot the changed range down in their TLBs
// with SBI RFENCE remote_sfence_vma before returning, so no hart uses a
// stale translation once map()/unmap() (and alloc_stack()/free_stack())
// have returned. Secondary harts load satp() when they start (libs/smp).
// Not for interrupt context.
#include <base/result.hpp>
#include <cstddef>
#include <cstdint>

namespace tessera::mmu {

enum class Access : std::uint8_t { None = 0, Read = 1, ReadWrite = 3, ReadExecute = 5 };

// Maps [va, va + size) to [pa, ...) with `access` (page-aligned).
base::Result<void> map(std::uintptr_t va, std::uintptr_t pa, std::size_t size, Access access);
base::Result<void> unmap(std::uintptr_t va, std::size_t size);
// The access a load/store/fetch at `va` would get (None if unmapped).
Access access_of(std::uintptr_t va);

// A stack with an unmapped guard page directly below it.
struct Stack {
    std::uintptr_t guard;  // lowest address: the unmapped page
    std::uintptr_t bottom; // lowest usable address (= the stack limit)
    std::uintptr_t top;    // initial sp
};
base::Result<Stack> alloc_stack(std::size_t size);
void free_stack(const Stack& stack);

struct Stats {
    bool enabled;
    std::uint64_t table_pages;
    std::uint64_t splits;     // 2 MiB pages split into 4 KiB ones
    std::uint64_t shootdowns; // remote TLB flushes sent to other harts
};
Stats stats();

// The satp value that selects the kernel's table (Sv39 mode and root
// page), for a secondary hart to load; 0 before mmu.enable has run.
std::uint64_t satp();

// What an address is, for fault reports ("kernel text (read-only)",
// "guard page below the boot stack", "unmapped"...).
const char* describe(std::uintptr_t address);

} // namespace tessera::mmu
