// Deliberate memory bugs for test/test_memory.py. Each must be caught by
// the allocator that owns the memory and end in a report and exit 70.
#include <arch/cpu.hpp>
#include <base/opaque.hpp>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <mm-pool/kmalloc.hpp>
#include <mm-pool/pool.hpp>
#include <arch/hart.hpp>
#include <mmu/mmu.hpp>
#include <plat/machine.hpp>
#include <plat/timer.hpp>

using namespace tessera;

extern "C" char __text_start[];

namespace {

constinit mm_pool::Pool g_pool_a("memfault-a", 48);
constinit mm_pool::Pool g_pool_b("memfault-b", 48);

// Each level takes a good bite of stack, so the guard is reached quickly.
[[gnu::noinline]] unsigned recurse(unsigned depth) {
    volatile char pad[512];
    pad[0] = static_cast<char>(depth);
    return depth == 0 ? 0 : recurse(depth - 1) + pad[0];
}

void recurse_forever() { (void)recurse(1u << 30); }

// Runs fn on another stack, as a scheduler will: the hart's stack limit
// follows the switch.
void run_on_stack(void (*fn)(), const mmu::Stack& stack) {
    arch::this_hart().stack_limit = stack.bottom;
    arch::this_hart().thread_name = "memfault-worker";
    asm volatile("mv sp, %1\n jalr %0" ::"r"(fn), "r"(stack.top) : "ra", "memory");
    __builtin_unreachable(); // fn never returns here: it overflows
}

void allocate_in_interrupt() {
    (void)mm_pool::kmalloc(32); // must be refused: VERIFY in kmalloc
}

int fault(std::string_view kind) {
    klog::print("memfault: fault={}\n", kind);
    if (kind == "buddy-double-free") {
        void* p = mm_buddy::alloc_pages(0).value();
        mm_buddy::free_pages(p);
        mm_buddy::free_pages(base::opaque(p));
    } else if (kind == "buddy-foreign") {
        static char not_from_the_allocator[64];
        mm_buddy::free_pages(base::opaque(not_from_the_allocator));
    } else if (kind == "kfree-double") {
        void* p = mm_pool::kmalloc(100).value();
        mm_pool::kfree(p);
        mm_pool::kfree(base::opaque(p));
    } else if (kind == "kfree-foreign") {
        void* p = mm_pool::kmalloc(100).value();
        mm_pool::kfree(base::opaque(static_cast<char*>(p) + 16)); // inside a block
    } else if (kind == "pool-use-after-free") {
        auto* p = static_cast<std::uint8_t*>(g_pool_a.allocate().value());
        g_pool_a.free(p);
        base::opaque(p)[40] = 1;              // write after free
        (void)g_pool_a.allocate();      // reuse finds the poison disturbed
    } else if (kind == "heap-overflow") {
        auto* p = static_cast<char*>(mm_pool::kmalloc(100).value());
        base::opaque(p)[100] = 'x';           // one past the end
        mm_pool::kfree(p);
    } else if (kind == "wrong-pool") {
        void* p = g_pool_a.allocate().value();
        g_pool_b.free(base::opaque(p));
    } else if (kind == "write-text") {
        *base::opaque(reinterpret_cast<volatile std::uint32_t*>(__text_start + 64)) = 0; // W^X: text is read-only
    } else if (kind == "null-deref") {
        klog::print("read {}\n", *base::opaque(static_cast<volatile int*>(nullptr)));
    } else if (kind == "stack-overflow") {
        recurse_forever(); // runs into the guard page below the boot stack
    } else if (kind == "guard-stack") {
        auto stack = mmu::alloc_stack(8192).value();
        klog::print("memfault: worker stack {:#x}-{:#x}, guard at {:#x}\n", stack.bottom, stack.top, stack.guard);
        run_on_stack(recurse_forever, stack);
    } else if (kind == "irq-alloc") {
        (void)plat::timer::set_handler(allocate_in_interrupt);
        plat::timer::arm(plat::timer::now() + 100);
        for (;;) arch::wfi();
    } else {
        klog::print("memfault: unknown fault kind '{}'\n", kind);
        return 2;
    }
    klog::print("memfault: survived '{}', which is a bug\n", kind);
    return 3;
}

} // namespace

int main() { return fault(plat::boot_option("fault")); }
