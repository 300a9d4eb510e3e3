// Deliberate memory bugs for test/test_memory.py. Each must be caught by
// the allocator that owns the memory and end in a report and exit 70.
#include <arch/cpu.hpp>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <mm-pool/kmalloc.hpp>
#include <mm-pool/pool.hpp>
#include <plat/machine.hpp>
#include <plat/timer.hpp>

using namespace tessera;

namespace {

constinit mm_pool::Pool g_pool_a("memfault-a", 48);
constinit mm_pool::Pool g_pool_b("memfault-b", 48);

// The compiler must not see through these (it could drop "dead" stores).
template <typename T>
T* opaque(T* p) {
    asm volatile("" : "+r"(p));
    return p;
}

void allocate_in_interrupt() {
    (void)mm_pool::kmalloc(32); // must be refused: VERIFY in kmalloc
}

int fault(std::string_view kind) {
    klog::print("memfault: fault={}\n", kind);
    if (kind == "buddy-double-free") {
        void* p = mm_buddy::alloc_pages(0).value();
        mm_buddy::free_pages(p);
        mm_buddy::free_pages(opaque(p));
    } else if (kind == "buddy-foreign") {
        static char not_from_the_allocator[64];
        mm_buddy::free_pages(opaque(not_from_the_allocator));
    } else if (kind == "kfree-double") {
        void* p = mm_pool::kmalloc(100).value();
        mm_pool::kfree(p);
        mm_pool::kfree(opaque(p));
    } else if (kind == "kfree-foreign") {
        void* p = mm_pool::kmalloc(100).value();
        mm_pool::kfree(opaque(static_cast<char*>(p) + 16)); // inside a block
    } else if (kind == "pool-use-after-free") {
        auto* p = static_cast<std::uint8_t*>(g_pool_a.allocate().value());
        g_pool_a.free(p);
        opaque(p)[40] = 1;              // write after free
        (void)g_pool_a.allocate();      // reuse finds the poison disturbed
    } else if (kind == "heap-overflow") {
        auto* p = static_cast<char*>(mm_pool::kmalloc(100).value());
        opaque(p)[100] = 'x';           // one past the end
        mm_pool::kfree(p);
    } else if (kind == "wrong-pool") {
        void* p = g_pool_a.allocate().value();
        g_pool_b.free(opaque(p));
    } else if (kind == "irq-alloc") {
        plat::timer::set_handler(allocate_in_interrupt);
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
