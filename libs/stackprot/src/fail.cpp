// What a protected function calls when its canary was overwritten. Built
// with -fno-stack-protector: the stack is already known to be corrupt.
#include <arch/cpu.hpp>
#include <base/verify.hpp>
#include <klog/klog.hpp>

using namespace tessera;

extern "C" [[noreturn]] void __stack_chk_fail() {
    // Our return address is the failed check's epilogue, in the function
    // whose frame was smashed: read from ra, not from the smashed memory
    // (which also holds that function's saved ra and fp, maybe overwritten:
    // the backtrace below may end at that frame).
    auto where = reinterpret_cast<std::uintptr_t>(__builtin_return_address(0));
    // The overflow may have happened under the log lock (in klog itself):
    // print the way panics do, lock ignored.
    arch::irq_disable_hard();
    klog::enter_panic_mode();
    klog::print("\n*** stack smashing detected: the stack canary of the function at {:#x} was overwritten\n",
                static_cast<unsigned long long>(where));
    PANIC("stack smashing detected");
}
