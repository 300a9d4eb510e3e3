// Deliberate failures for the panic-path tests (test/test_panic.py). Each
// kind must produce a report on the console and a non-zero QEMU exit.
#include <base/string.hpp>
#include <base/verify.hpp>
#include <klog/klog.hpp>
#include <plat/machine.hpp>

using namespace tessera;

namespace {

// An address the compiler cannot reason about (below RAM, not a device on
// virt): accesses fault in the PMP/bus instead of being optimized.
std::uintptr_t bad_address() {
    std::uintptr_t a = 0x40;
    asm volatile("" : "+r"(a));
    return a;
}

// noinline + a frame of their own, so the backtrace has several entries.
[[gnu::noinline]] void do_illegal() { asm volatile(".word 0x00000000"); }
[[gnu::noinline]] void do_load() {
    volatile auto* p = reinterpret_cast<volatile std::uint64_t*>(bad_address());
    klog::print("read {}\n", *p);
}
[[gnu::noinline]] void do_store() { *reinterpret_cast<volatile std::uint64_t*>(bad_address()) = 1; }
[[gnu::noinline]] void do_bad_jump() {
    auto target = reinterpret_cast<void (*)()>(bad_address());
    target();
}
[[gnu::noinline]] void do_ebreak() { asm volatile("ebreak"); }
[[gnu::noinline]] void do_verify(int x) { VERIFY(x == 42); }

[[gnu::noinline]] int crash(std::string_view kind) {
    klog::print("crashtest: crash={}\n", kind);
    if (kind == "illegal") do_illegal();
    else if (kind == "load") do_load();
    else if (kind == "store") do_store();
    else if (kind == "jump") do_bad_jump();
    else if (kind == "ebreak") do_ebreak();
    else if (kind == "panic") PANIC("crashtest asked for a panic");
    else if (kind == "verify") do_verify(41);
    else if (kind.substr(0, 5) == "exit:") {
        auto status = base::parse_unsigned(kind.substr(5));
        return status.ok() ? static_cast<int>(status.value()) : 2;
    } else {
        klog::print("crashtest: unknown crash kind '{}'\n", kind);
        return 2;
    }
    klog::print("crashtest: survived '{}', which is a bug\n", kind);
    return 3;
}

} // namespace

int main() { return crash(plat::boot_option("crash")); }
