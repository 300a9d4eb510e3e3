#include <arch/context.hpp>
#include <cstring>

extern "C" void arch_thread_start();

namespace tessera::arch {

void init_context(Context& context, std::uintptr_t stack_top, void (*entry)(void*), void* arg) {
    memset(&context, 0, sizeof(context));
    context.ra = reinterpret_cast<std::uint64_t>(&arch_thread_start);
    context.sp = stack_top & ~std::uintptr_t(15); // the ABI wants 16-byte alignment
    context.s[1] = reinterpret_cast<std::uint64_t>(entry);
    context.s[2] = reinterpret_cast<std::uint64_t>(arg);
}

} // namespace tessera::arch
