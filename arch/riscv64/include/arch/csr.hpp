#pragma once
// Typed access to RISC-V control and status registers. The CSR number is a
// template argument because csrr/csrw encode it as an immediate.
#include <cstdint>

namespace tessera::arch {

enum class Csr : std::uint16_t {
    sstatus = 0x100,
    sie = 0x104,
    stvec = 0x105,
    sscratch = 0x140,
    sepc = 0x141,
    scause = 0x142,
    stval = 0x143,
    sip = 0x144,
    stimecmp = 0x14D, // Sstc extension
    satp = 0x180,
    cycle = 0xC00,
    time = 0xC01,
    instret = 0xC02,
};

template <Csr C>
inline std::uint64_t csr_read() {
    std::uint64_t v;
    asm volatile("csrr %0, %1" : "=r"(v) : "i"(static_cast<unsigned>(C)) : "memory");
    return v;
}

template <Csr C>
inline void csr_write(std::uint64_t v) {
    asm volatile("csrw %0, %1" ::"i"(static_cast<unsigned>(C)), "r"(v) : "memory");
}

template <Csr C>
inline std::uint64_t csr_set(std::uint64_t bits) {
    std::uint64_t old;
    asm volatile("csrrs %0, %1, %2" : "=r"(old) : "i"(static_cast<unsigned>(C)), "r"(bits) : "memory");
    return old;
}

template <Csr C>
inline std::uint64_t csr_clear(std::uint64_t bits) {
    std::uint64_t old;
    asm volatile("csrrc %0, %1, %2" : "=r"(old) : "i"(static_cast<unsigned>(C)), "r"(bits) : "memory");
    return old;
}

// sstatus fields (privileged spec, section "Supervisor Status Register").
namespace sstatus {
inline constexpr std::uint64_t SIE = 1ull << 1;
inline constexpr std::uint64_t SPIE = 1ull << 5;
inline constexpr std::uint64_t SPP = 1ull << 8;
inline constexpr unsigned FS_SHIFT = 13;
inline constexpr std::uint64_t FS_MASK = 3ull << FS_SHIFT;
inline constexpr std::uint64_t FS_INITIAL = 1ull << FS_SHIFT;
inline constexpr std::uint64_t SUM = 1ull << 18;
} // namespace sstatus

// Interrupt numbers as they appear in scause (with the top bit set) and as
// bit positions in sie/sip.
enum class Interrupt : unsigned { Software = 1, Timer = 5, External = 9 };
inline constexpr std::uint64_t sie_bit(Interrupt i) { return 1ull << static_cast<unsigned>(i); }

inline std::uint64_t rdtime() { return csr_read<Csr::time>(); }
inline std::uint64_t rdinstret() { return csr_read<Csr::instret>(); }
inline std::uint64_t rdcycle() { return csr_read<Csr::cycle>(); }

} // namespace tessera::arch
