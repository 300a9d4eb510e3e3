#pragma once
// Stopping the machine. Under QEMU the sifive_test device turns the status
// into QEMU's own exit status, which is how tests get a verdict; SBI SRST is
// the fallback and always exits 0.

namespace tessera::plat {

// Status used for panics and unhandled exceptions (EX_SOFTWARE in sysexits).
inline constexpr int kExitPanic = 70;

// 0 = pass; 1..255 = failure with that exit status.
[[noreturn]] void exit_machine(int status);
[[noreturn]] void reboot();

} // namespace tessera::plat
