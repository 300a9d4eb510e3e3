#include <arch/hart.hpp>
#include <base/verify.hpp>

namespace tessera::arch {

namespace {
constinit Hart g_harts[kMaxHarts];
// Where a hart reports a stack overflow from (its own stack is exhausted).
constexpr std::size_t kEmergencyStack = 8192;
alignas(16) NOINIT char g_emergency_stacks[kMaxHarts][kEmergencyStack];
} // namespace

extern "C" char __boot_stack_bottom[];

void init_hart(unsigned index, std::uint64_t hart_id) {
    VERIFY(index < kMaxHarts);
    Hart& h = g_harts[index];
    h.hart_id = hart_id;
    h.index = index;
    h.emergency_stack_top = reinterpret_cast<std::uint64_t>(g_emergency_stacks[index] + kEmergencyStack);
    if (index == 0) h.stack_limit = reinterpret_cast<std::uint64_t>(__boot_stack_bottom);
    asm volatile("mv tp, %0" ::"r"(&h));
}

} // namespace tessera::arch
