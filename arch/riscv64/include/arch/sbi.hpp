#pragma once
// Supervisor Binary Interface calls (RISC-V SBI spec v1.0/v2.0): base,
// timer, IPI, remote fences (RFENCE), hart state management (HSM) and
// system reset (SRST).
#include <base/result.hpp>
#include <cstdint>

namespace tessera::arch::sbi {

using base::Result;

// Extension IDs (SBI spec, chapter per extension).
enum class Extension : std::uint64_t {
    Base = 0x10,
    Timer = 0x54494D45, // "TIME"
    Ipi = 0x735049,     // "sPI"
    Rfence = 0x52464E43, // "RFNC"
    Hsm = 0x48534D,     // "HSM"
    Srst = 0x53525354,  // "SRST"
};

// Raw SBI error codes map to base::Error; the raw value is kept for reports.
struct Raw {
    long error;
    long value;
};
Raw call(Extension ext, std::uint64_t fid, std::uint64_t a0 = 0, std::uint64_t a1 = 0,
         std::uint64_t a2 = 0, std::uint64_t a3 = 0);

struct Version {
    unsigned major;
    unsigned minor;
};
Version spec_version();
long impl_id();
long impl_version();
bool probe(Extension ext);

Result<void> set_timer(std::uint64_t deadline_ticks);
Result<void> send_ipi(std::uint64_t hart_mask, std::uint64_t hart_mask_base);

// RFENCE (SBI spec chapter 8): executes sfence.vma for [start, start + size)
// on the harts in the mask (size ~0 or 0 with start 0: the whole address
// space). OpenSBI returns only after every target hart has done it, so the
// caller may rely on the flush having happened. The targets take it in
// M-mode, whatever their sstatus.SIE.
Result<void> remote_sfence_vma(std::uint64_t hart_mask, std::uint64_t hart_mask_base, std::uint64_t start,
                               std::uint64_t size);

enum class HartState : long { Started = 0, Stopped = 1, StartPending = 2, StopPending = 3,
                              Suspended = 4, SuspendPending = 5, ResumePending = 6 };
Result<void> hart_start(std::uint64_t hart_id, std::uint64_t start_address, std::uint64_t opaque);
Result<void> hart_stop();
Result<HartState> hart_status(std::uint64_t hart_id);

enum class ResetType : std::uint32_t { Shutdown = 0, ColdReboot = 1, WarmReboot = 2 };
enum class ResetReason : std::uint32_t { None = 0, SystemFailure = 1 };
// Returns only if the firmware refused.
Result<void> system_reset(ResetType type, ResetReason reason);

} // namespace tessera::arch::sbi
