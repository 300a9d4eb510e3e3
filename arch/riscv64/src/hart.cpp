#include <arch/hart.hpp>
#include <base/verify.hpp>

namespace tessera::arch {

namespace {
constinit Hart g_harts[kMaxHarts];
}

void init_hart(unsigned index, std::uint64_t hart_id) {
    VERIFY(index < kMaxHarts);
    g_harts[index].hart_id = hart_id;
    g_harts[index].index = index;
    asm volatile("mv tp, %0" ::"r"(&g_harts[index]));
}

} // namespace tessera::arch
