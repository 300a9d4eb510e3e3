#pragma once
// External interrupts through the PLIC (RISC-V PLIC spec v1.0.0), for the
// boot hart's S-mode context found in the device tree. Handlers run in
// interrupt context: no allocation, no blocking.
//
// SMP: not yet. All sources are routed to the boot hart, and attach()/
// detach() must be called from the boot hart (they guard against its own
// interrupts, not against other harts). The smp library will add per-hart
// contexts and a lock.
#include <base/result.hpp>
#include <cstdint>

namespace tessera::plat::irq {

using Handler = void (*)(void* context);

// Registers and enables `irq` (1..N as in the device tree). Busy if the
// line already has a handler; OutOfRange past the PLIC's source count.
base::Result<void> attach(std::uint32_t irq, Handler handler, void* context);
void detach(std::uint32_t irq);

struct Stats {
    std::uint64_t claimed;
    std::uint64_t spurious; // claims with no handler, or claim id 0
};
Stats stats();

} // namespace tessera::plat::irq
