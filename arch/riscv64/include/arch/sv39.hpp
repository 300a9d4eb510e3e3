#pragma once
// Sv39 page-table entries and address translation control (RISC-V
// privileged spec, "Sv39: Page-Based 39-bit Virtual-Memory System").
#include <arch/csr.hpp>
#include <cstdint>

namespace tessera::arch::sv39 {

inline constexpr std::uint64_t kPageSize = 4096;
inline constexpr unsigned kLevels = 3;          // 1 GiB, 2 MiB, 4 KiB leaves
inline constexpr unsigned kEntries = 512;

// PTE bits (spec table "Sv39 page table entry").
inline constexpr std::uint64_t V = 1 << 0;
inline constexpr std::uint64_t R = 1 << 1;
inline constexpr std::uint64_t W = 1 << 2;
inline constexpr std::uint64_t X = 1 << 3;
inline constexpr std::uint64_t G = 1 << 5;
inline constexpr std::uint64_t A = 1 << 6;
inline constexpr std::uint64_t D = 1 << 7;

constexpr std::uint64_t level_size(unsigned level) { return kPageSize << (9 * level); } // level 0 = 4 KiB
constexpr unsigned index_of(std::uint64_t va, unsigned level) { return (va >> (12 + 9 * level)) & 511; }
constexpr std::uint64_t make_pte(std::uint64_t pa, std::uint64_t flags) { return ((pa >> 12) << 10) | flags; }
constexpr std::uint64_t pte_address(std::uint64_t pte) { return (pte >> 10) << 12; }
constexpr bool is_leaf(std::uint64_t pte) { return pte & (R | W | X); }

constexpr std::uint64_t satp_for(std::uint64_t root_pa) { return (std::uint64_t(8) << 60) | (root_pa >> 12); } // MODE = Sv39

// Switches this hart to the table `satp` names, with nothing stale left in
// its TLB from before.
inline void load_satp(std::uint64_t satp) {
    asm volatile("sfence.vma" ::: "memory");
    csr_write<Csr::satp>(satp);
    asm volatile("sfence.vma" ::: "memory");
}

inline void enable(std::uint64_t root_pa) { load_satp(satp_for(root_pa)); }

inline void flush(std::uint64_t va) { asm volatile("sfence.vma %0, zero" ::"r"(va) : "memory"); }
inline void flush_all() { asm volatile("sfence.vma" ::: "memory"); }

} // namespace tessera::arch::sv39
