#pragma once
// Time: the monotonic clock and timer events.
//
// The clock counts `rdtime` ticks since reset at the device tree's
// timebase frequency (10 MHz on QEMU virt). A timer event is a deadline and
// a callback, embedded in its owner (a thread, a callout, a run queue), so
// arming never allocates. Each hart keeps its pending events in a binary
// min-heap and its one-shot hardware timer armed for the heap's head; the
// hardware is written only when the head moves earlier or after a firing
// (plat::timer counts writes and the writes it skipped).
//
// Firing: in the timer interrupt of the hart the event was armed on, with
// interrupts off and no time lock held, so a callback may arm or cancel
// events (its own included) and take locks that are outside the time
// locks in base/lock_order.hpp. Lateness (now - deadline at the moment the
// callback starts) goes into the hart's histogram.
//
// SMP-safe. An event has one owner who serialises arm() and cancel() on it
// (usually under the owner's lock); the library serialises those against
// the firing. The owner must expect a callback for an arming it has since
// cancelled or replaced when the two race on different harts: cancel()
// says whether it stopped the firing.
#include <arch/csr.hpp>
#include <base/result.hpp>
#include <cstdint>
#include <time/histogram.hpp>

namespace tessera::time {

using Ticks = std::uint64_t;
inline constexpr Ticks kNever = ~0ull;

// Inline: the scheduler reads the clock on every switch.
inline Ticks now() { return arch::rdtime(); }
std::uint64_t to_ns(Ticks ticks);
Ticks from_ns(std::uint64_t ns);
inline Ticks from_us(std::uint64_t us) { return from_ns(us * 1000); }

struct Event {
    using Callback = void (*)(Event& event, Ticks now);
    Callback callback = nullptr;
    Ticks deadline = kNever;
    // Owned by the library (all-zero is the idle state, so zero-initialised
    // storage holds valid events).
    std::uint32_t slot = 0;  // heap index + 1; 0 when not queued
    std::uint16_t hart = 0;  // queue it is (or was last) on

    bool queued() const { return slot != 0; }
};

// Queues `event` (moving it if already queued) to fire at `deadline` on the
// calling hart; a deadline already passed fires at once. InvalidArgument
// without a callback, NoMemory when the hart has CONFIG_TIME_EVENTS_PER_HART
// events pending.
base::Result<void> arm(Event& event, Ticks deadline);
// Unqueues the event. True if it was pending, so that this arming will not
// fire; false if it was not queued (it may be firing right now elsewhere).
bool cancel(Event& event);

struct Stats {
    std::uint64_t armed;
    std::uint64_t cancelled;
    std::uint64_t fired;
    std::uint64_t pending;        // queued now, all harts
    std::uint64_t max_pending;    // most ever queued on one hart
    std::uint64_t hardware_writes;
    std::uint64_t hardware_skips; // arming the hardware for what it held already
};
Stats stats();
// Lateness of every firing, in ns, merged over the harts.
Histogram lateness();
void reset_lateness();

} // namespace tessera::time
