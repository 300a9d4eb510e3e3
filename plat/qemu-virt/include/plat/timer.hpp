#pragma once
// Monotonic time from the `time` CSR and a one-shot timer interrupt. The
// deadline goes to stimecmp directly when the device tree lists Sstc, else
// through the SBI timer call. Re-arming with an unchanged deadline is
// skipped (counted in Stats). SMP: arm/disarm/deadline act on the calling
// hart's comparator; the handler is one for all harts (the time library
// installs it and multiplexes the timer among its events). Stats sum all
// harts.
#include <cstdint>

namespace tessera::plat::timer {

std::uint64_t now();       // ticks since reset
std::uint64_t frequency(); // ticks per second (device tree timebase-frequency)
std::uint64_t ticks_to_ns(std::uint64_t ticks);
std::uint64_t ns_to_ticks(std::uint64_t ns);

using Handler = void (*)();
// Called in interrupt context when the armed deadline has passed. The timer
// is disarmed before the call; the handler may arm it again. Returns the
// previous handler, so that a temporary user (a test) can put it back.
Handler set_handler(Handler handler);
void arm(std::uint64_t deadline_ticks);
void disarm();
// What this hart's hardware is armed to now (~0 when disarmed).
std::uint64_t deadline();
// A secondary hart starting up: its comparator to "never".
void init_this_hart();

struct Stats {
    std::uint64_t programmed; // hardware/SBI writes
    std::uint64_t skipped;    // arm() calls that needed no write
    std::uint64_t fired;
    bool uses_sstc;
};
Stats stats();

} // namespace tessera::plat::timer
