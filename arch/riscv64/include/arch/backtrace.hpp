#pragma once
#include <cstdint>

namespace tessera::arch {

// Walks the frame-pointer chain starting at `fp` and prints one line per
// return address, numbering from `first_index`. Stops at the first frame
// pointer that is misaligned, outside the kernel image and boot stack, or
// not above the previous one (stacks grow down), so a corrupt chain ends
// the walk instead of faulting.
void print_backtrace(std::uint64_t fp, unsigned first_index = 0);

inline std::uint64_t current_frame_pointer() {
    std::uint64_t fp;
    asm volatile("mv %0, s0" : "=r"(fp));
    return fp;
}

} // namespace tessera::arch
