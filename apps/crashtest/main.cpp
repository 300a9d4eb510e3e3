// Deliberate failures for the panic-path tests (test/test_panic.py). Each
// kind must produce a report on the console and a non-zero QEMU exit.
#include <base/opaque.hpp>
#include <base/string.hpp>
#include <base/verify.hpp>
#include <climits>
#include <klog/klog.hpp>
#include <plat/machine.hpp>
#if CONFIG_LIB_UBSAN
#include <ubsan/ubsan.hpp>
#endif

using namespace tessera;

namespace {

// An address the compiler cannot reason about (below RAM, not a device on
// virt): accesses fault in the PMP/bus instead of being optimized.
std::uintptr_t bad_address() { return base::opaque<std::uintptr_t>(0x40); }

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

// Undefined behaviour that -fsanitize=undefined (libs/ubsan) reports.
// Without the library these kinds are not built (they would silently
// compute something).
#if CONFIG_LIB_UBSAN
[[gnu::noinline]] int do_ubsan_overflow() {
    volatile int result = 0; // each sum is stored, so each check runs
    // One site failing twice: report mode must report it once.
    for (int i = 0; i < 2; ++i) result = base::opaque(INT_MAX) + 1;
    return result;
}
[[gnu::noinline]] int do_ubsan_shift() { return base::opaque(1) << base::opaque(40); }
[[gnu::noinline]] std::uint32_t do_ubsan_misaligned() {
    alignas(4) unsigned char bytes[8] = {1, 2, 3, 4, 5, 6, 7, 8};
    return *reinterpret_cast<const std::uint32_t*>(base::opaque(bytes + 1));
}
#endif

// Writes `n` bytes into a 16-byte local array: more than 16 run into the
// canary above it. The pointer is laundered so that neither the compiler's
// warnings nor UBSan's bounds checks see which array it points to; only the
// stack protector (libs/stackprot) can catch this.
#if CONFIG_LIB_STACKPROT
[[gnu::noinline]] void do_stack_smash(std::size_t n) {
    char buffer[16];
    char* p = base::opaque(buffer);
    for (std::size_t i = 0; i < n; ++i) p[i] = 'A';
    klog::print("crashtest: wrote {} bytes into a {}-byte buffer\n", n, sizeof(buffer));
}
#endif

[[gnu::noinline]] int crash(std::string_view kind) {
    klog::print("crashtest: crash={}\n", kind);
    if (kind == "illegal") do_illegal();
    else if (kind == "load") do_load();
    else if (kind == "store") do_store();
    else if (kind == "jump") do_bad_jump();
    else if (kind == "ebreak") do_ebreak();
    else if (kind == "panic") PANIC("crashtest asked for a panic");
    else if (kind == "verify") do_verify(41);
#if CONFIG_LIB_UBSAN
    else if (kind == "ubsan-overflow") {
        klog::print("crashtest: INT_MAX + 1 gave {}\n", do_ubsan_overflow());
        ubsan::Stats stats = ubsan::stats();
        klog::print("crashtest: ubsan: {} report(s), {} repeat(s)\n", stats.reports, stats.repeats);
    }
    else if (kind == "ubsan-shift") klog::print("crashtest: 1 << 40 gave {}\n", do_ubsan_shift());
    else if (kind == "ubsan-misaligned") klog::print("crashtest: misaligned load gave {:#x}\n", do_ubsan_misaligned());
#else
    else if (kind.substr(0, 6) == "ubsan-") {
        klog::print("crashtest: not built with CONFIG_LIB_UBSAN\n");
        return 2;
    }
#endif
#if CONFIG_LIB_STACKPROT
    // The 16-byte buffer and the 8-byte canary GCC puts right above it; the
    // saved registers beyond stay intact, so the backtrace is complete.
    else if (kind == "stack-smash") do_stack_smash(base::opaque(std::size_t{24}));
#else
    else if (kind == "stack-smash") {
        klog::print("crashtest: not built with CONFIG_LIB_STACKPROT\n");
        return 2;
    }
#endif
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
