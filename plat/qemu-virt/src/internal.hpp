#pragma once
// Platform-private interfaces between the boot sequence and the drivers.
#include <arch/csr.hpp>
#include <arch/hart.hpp>
#include <base/result.hpp>
#include <plat/machine.hpp>

namespace tessera::plat {

using arch::kMaxHarts;

base::Result<void> discover(const void* dtb, std::uint64_t boot_hart);
BootTimes& mutable_boot_times();

namespace console {
void init_early(std::uint64_t base);
}

} // namespace tessera::plat
