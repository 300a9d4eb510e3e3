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
// Sleeps (wfi, without lost wake-ups) until a byte arrives. Needs
// interrupts enabled: the receive interrupt is what fills the ring.
char read();

struct Stats {
    std::uint64_t rx_bytes;
    std::uint64_t rx_overruns; // bytes dropped because the ring was full
    std::uint64_t rx_interrupts;
};
Stats stats();

} // namespace tessera::plat::console
