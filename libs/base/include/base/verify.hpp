#pragma once
// Broken invariants are bugs, not errors: VERIFY() panics with file:line and
// is always compiled in. Environmental failures return Result errors instead.
//
// panic() is implemented by the architecture layer (it knows how to dump
// state and stop the machine); base only declares it.

namespace tessera {

[[noreturn]] void panic_at(const char* file, int line, const char* message);
[[noreturn]] void verify_failed(const char* expression, const char* file, int line);

} // namespace tessera

#define VERIFY(cond)                                                         \
    do {                                                                     \
        if (!(cond)) [[unlikely]]                                            \
            ::tessera::verify_failed(#cond, __FILE__, __LINE__);             \
    } while (0)

#define VERIFY_NOT_REACHED() ::tessera::verify_failed("not reached", __FILE__, __LINE__)

// Places a buffer in .noinit: not zeroed at boot (the BSS clear skips it).
// Only for storage that is always written before it is read.
#define NOINIT [[gnu::section(".noinit")]]

#define PANIC(message) ::tessera::panic_at(__FILE__, __LINE__, (message))
