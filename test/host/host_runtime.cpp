// What the kernel's arch layer provides to libraries, for host builds of
// pure-logic code (parsers, formatting) under ASan/UBSan.
#include <cstdio>
#include <cstdlib>

namespace tessera {
[[noreturn]] void panic_at(const char* file, int line, const char* message) {
    std::fprintf(stderr, "PANIC at %s:%d: %s\n", file, line, message);
    std::abort();
}
[[noreturn]] void verify_failed(const char* expression, const char* file, int line) {
    std::fprintf(stderr, "VERIFY failed at %s:%d: %s\n", file, line, expression);
    std::abort();
}
} // namespace tessera
