#pragma once
// The system console: an ns16550-compatible UART. Output is polled (works
// from the first instruction and inside panics); input is interrupt-driven
// once the plat.console_rx init step has run, and buffered in a ring.
// SMP: write() callers serialize themselves (klog holds its lock); the
// receive ring is single-producer (the IRQ) single-consumer.
#include <cstdint>
#include <optional>
#include <string_view>

namespace tessera::plat::console {

void write(std::string_view text);
void put_char(char c);

// A received byte, if any, without waiting.
std::optional<char> try_read();
// Waits until a byte arrives, without lost wake-ups. Needs interrupts
// enabled: the receive interrupt is what fills the ring. Without a
// scheduler the hart waits in wfi; with one, the calling thread blocks
// (ReaderBlocking) and other threads run meanwhile. One reader at a time.
char read();

// How read() blocks the calling thread; the scheduler installs it
// (sched.start). `block` may return spuriously (read re-checks the ring).
struct ReaderBlocking {
    std::uint64_t (*current)();        // a token naming the calling thread
    void (*block)();                   // sleep until woken; an earlier wake is remembered
    void (*wake)(std::uint64_t token); // called from the receive interrupt
};
void set_reader_blocking(const ReaderBlocking* blocking);

struct Stats {
    std::uint64_t rx_bytes;
    std::uint64_t rx_overruns; // bytes dropped because the ring was full
    std::uint64_t rx_interrupts;
};
Stats stats();

} // namespace tessera::plat::console
