#include <arch/sbi.hpp>

namespace tessera::arch::sbi {

using base::Error;

Raw call(Extension ext, std::uint64_t fid, std::uint64_t a0, std::uint64_t a1, std::uint64_t a2,
         std::uint64_t a3) {
    // Calling convention (SBI spec 3): a7 = EID, a6 = FID, args in a0..a5,
    // returns error in a0 and value in a1.
    register std::uint64_t r_a0 asm("a0") = a0;
    register std::uint64_t r_a1 asm("a1") = a1;
    register std::uint64_t r_a2 asm("a2") = a2;
    register std::uint64_t r_a3 asm("a3") = a3;
    register std::uint64_t r_a6 asm("a6") = fid;
    register std::uint64_t r_a7 asm("a7") = static_cast<std::uint64_t>(ext);
    asm volatile("ecall" : "+r"(r_a0), "+r"(r_a1) : "r"(r_a2), "r"(r_a3), "r"(r_a6), "r"(r_a7) : "memory");
    return {static_cast<long>(r_a0), static_cast<long>(r_a1)};
}

namespace {
Result<void> to_result(long error) {
    switch (error) {
    case 0: return {};
    case -2: return Error::NotSupported;   // SBI_ERR_NOT_SUPPORTED
    case -3: return Error::InvalidArgument; // SBI_ERR_INVALID_PARAM
    case -5: return Error::InvalidArgument; // SBI_ERR_INVALID_ADDRESS
    case -6: return Error::Busy;            // SBI_ERR_ALREADY_AVAILABLE
    case -7: return Error::Busy;            // SBI_ERR_ALREADY_STARTED
    case -8: return Error::Busy;            // SBI_ERR_ALREADY_STOPPED
    default: return Error::IoError;
    }
}
} // namespace

Version spec_version() {
    auto r = call(Extension::Base, 0);
    return {unsigned((r.value >> 24) & 0x7f), unsigned(r.value & 0xffffff)};
}
long impl_id() { return call(Extension::Base, 1).value; }
long impl_version() { return call(Extension::Base, 2).value; }
bool probe(Extension ext) { return call(Extension::Base, 3, static_cast<std::uint64_t>(ext)).value != 0; }

Result<void> set_timer(std::uint64_t deadline) { return to_result(call(Extension::Timer, 0, deadline).error); }

Result<void> send_ipi(std::uint64_t mask, std::uint64_t base) {
    return to_result(call(Extension::Ipi, 0, mask, base).error);
}

Result<void> remote_sfence_vma(std::uint64_t mask, std::uint64_t base, std::uint64_t start, std::uint64_t size) {
    return to_result(call(Extension::Rfence, 1, mask, base, start, size).error);
}

Result<void> hart_start(std::uint64_t hart, std::uint64_t addr, std::uint64_t opaque) {
    return to_result(call(Extension::Hsm, 0, hart, addr, opaque).error);
}
Result<void> hart_stop() { return to_result(call(Extension::Hsm, 1).error); }
Result<HartState> hart_status(std::uint64_t hart) {
    auto r = call(Extension::Hsm, 2, hart);
    if (r.error) return to_result(r.error).error();
    return static_cast<HartState>(r.value);
}

Result<void> system_reset(ResetType type, ResetReason reason) {
    return to_result(call(Extension::Srst, 0, static_cast<std::uint32_t>(type),
                          static_cast<std::uint32_t>(reason)).error);
}

} // namespace tessera::arch::sbi
