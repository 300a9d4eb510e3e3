#pragma once
// base::opaque(v) returns v unchanged, but as a value the compiler cannot
// see through: it can neither fold what is done with it nor prove it safe,
// so a deliberate fault (a store to a bad address, an overflow the
// hardening libraries must catch) really happens. For test code only.

namespace tessera::base {

template <typename T>
T opaque(T v) {
    asm volatile("" : "+r"(v));
    return v;
}

} // namespace tessera::base
