#include "internal.hpp"
#include <arch/cpu.hpp>
#include <arch/mmio.hpp>
#include <arch/sbi.hpp>
#include <klog/klog.hpp>
#include <plat/power.hpp>

namespace tessera::plat {

namespace {
// sifive_test commands (QEMU hw/misc/sifive_test.c).
constexpr std::uint32_t kTestPass = 0x5555;
constexpr std::uint32_t kTestFail = 0x3333;
constexpr std::uint32_t kTestReset = 0x7777;

[[noreturn]] void halt_forever() {
    arch::irq_disable_hard();
    for (;;) arch::wfi();
}
} // namespace

void exit_machine(int status) {
    std::uint64_t test = machine().test_base;
    if (test == 0) test = 0x100000; // the panic may predate device discovery
    auto reg = arch::Mmio<std::uint32_t>(test);
    if (status == 0)
        reg.write(kTestPass);
    else
        reg.write((static_cast<std::uint32_t>(status & 0xffff) << 16) | kTestFail);
    // Not under QEMU (or no test device): fall back to SBI, which cannot
    // carry the status.
    (void)arch::sbi::system_reset(arch::sbi::ResetType::Shutdown,
                                  status ? arch::sbi::ResetReason::SystemFailure : arch::sbi::ResetReason::None);
    halt_forever();
}

void reboot() {
    if (machine().test_base) arch::Mmio<std::uint32_t>(machine().test_base).write(kTestReset);
    (void)arch::sbi::system_reset(arch::sbi::ResetType::ColdReboot, arch::sbi::ResetReason::None);
    halt_forever();
}

} // namespace tessera::plat
