#pragma once
#include <cstdint>

namespace tessera::arch {

// Walks the frame-pointer chain starting at `fp` and prints one line per
// return address, numbering from `first_index`. Stops at the first frame
// pointer that is misaligned, outside the kernel image and boot stack, or
// not above the previous one (stacks grow down), so a corrupt chain ends
// the walk instead of faulting.
//
// GCC's RISC-V frame record is {saved fp at fp-16, ra at fp-8}, except in
// leaf functions, which save only the caller's fp, at fp-8. A leaf frame is
// recognised by fp-8 not holding a text address; its return address is
// still in `ra` when the walk starts at a trap (pass it as `leaf_ra`).
void print_backtrace(std::uint64_t fp, unsigned first_index = 0, std::uint64_t leaf_ra = 0);

[[nodiscard]] bool is_text_address(std::uint64_t address);

inline std::uint64_t current_frame_pointer() {
    std::uint64_t fp;
    asm volatile("mv %0, s0" : "=r"(fp));
    return fp;
}

} // namespace tessera::arch
