#pragma once
// Per-hart data, reached in O(1) through the tp register.
#include <cstddef>
#include <cstdint>

namespace tessera::arch {

struct alignas(64) Hart {
    std::uint64_t hart_id = 0;   // as numbered by the platform (mhartid)
    std::uint32_t index = 0;     // dense 0..N-1 index for per-hart arrays
    std::uint32_t trap_depth = 0;
    bool reporting = false;      // a fault report or panic is being printed
    std::uint64_t interrupts = 0;
    // Lowest usable address of the stack this hart runs on (0: unknown).
    // The trap vector refuses to push a frame below it (trap_entry.S).
    // The scheduler will update it on every switch.
    std::uint64_t stack_limit = 0;
    std::uint64_t emergency_stack_top = 0; // for reporting stack overflows
    const char* thread_name = "boot";      // named in fault reports
};
static_assert(offsetof(Hart, stack_limit) == 32 && offsetof(Hart, emergency_stack_top) == 40,
              "trap_entry.S uses these offsets");

inline constexpr unsigned kMaxHarts = 8;

inline Hart& this_hart() {
    Hart* h;
    asm volatile("mv %0, tp" : "=r"(h));
    return *h;
}

// True while this hart runs a trap handler (interrupt or exception):
// allocators and sleeping primitives refuse to run there.
inline bool in_interrupt() { return this_hart().trap_depth != 0; }

// Points tp at the slot for `index` and records the hardware id.
void init_hart(unsigned index, std::uint64_t hart_id);

} // namespace tessera::arch
