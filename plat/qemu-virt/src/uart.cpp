// ns16550a console. Register map: PC16550D datasheet; QEMU's virt UART has
// reg-shift 0 and byte-wide registers.
#include "internal.hpp"
#include <arch/cpu.hpp>
#include <arch/mmio.hpp>
#include <base/verify.hpp>
#include <atomic>
#include <plat/console.hpp>
#include <plat/irq.hpp>

namespace tessera::plat::console {

namespace {

enum Reg : unsigned { RBR_THR = 0, IER = 1, FCR = 2, LCR = 3, MCR = 4, LSR = 5 };
constexpr std::uint8_t kLsrDataReady = 0x01;
constexpr std::uint8_t kLsrThrEmpty = 0x20;
constexpr std::uint8_t kIerRxAvailable = 0x01;
constexpr std::uint8_t kMcrOut2 = 0x08; // gates the IRQ line on real 16550s

constexpr std::size_t kRxSize = CONFIG_PLAT_UART_RX_BUFFER;
static_assert((kRxSize & (kRxSize - 1)) == 0, "CONFIG_PLAT_UART_RX_BUFFER must be a power of two");

constinit std::uint64_t g_base = 0;

// Receive ring: the IRQ handler produces, one reader consumes.
NOINIT char g_rx_data[kRxSize]; // only [tail, head) is read

struct RxRing {
    char (&data)[kRxSize] = g_rx_data;
    std::atomic<std::uint32_t> head{0}; // written by the producer
    std::atomic<std::uint32_t> tail{0}; // written by the consumer
};
constinit RxRing g_rx;
constinit Stats g_stats = {};
constinit const ReaderBlocking* g_blocking = nullptr;
constexpr std::uint64_t kNoReader = ~0ull;
// The thread blocked in read(), if any; the interrupt takes it to wake it.
constinit std::atomic<std::uint64_t> g_reader{kNoReader};

arch::Mmio<std::uint8_t> reg(Reg r) { return arch::Mmio<std::uint8_t>(g_base + r); }

void on_rx_interrupt(void*) {
    ++g_stats.rx_interrupts;
    while (reg(LSR).read() & kLsrDataReady) {
        char c = static_cast<char>(reg(RBR_THR).read());
        std::uint32_t head = g_rx.head.load(std::memory_order_relaxed);
        if (head - g_rx.tail.load(std::memory_order_acquire) == kRxSize) {
            ++g_stats.rx_overruns;
            continue;
        }
        g_rx.data[head % kRxSize] = c;
        g_rx.head.store(head + 1, std::memory_order_release);
        ++g_stats.rx_bytes;
    }
    std::uint64_t reader = g_reader.exchange(kNoReader, std::memory_order_acq_rel);
    if (reader != kNoReader && g_blocking) g_blocking->wake(reader);
}

} // namespace

void init_early(std::uint64_t base) {
    g_base = base;
    if (base == 0) return; // no console: output is dropped, input never arrives
    reg(IER).write(0);
    reg(LCR).write(0x03); // 8N1
    reg(FCR).write(0x07); // FIFOs on and cleared
}

void put_char(char c) {
    if (g_base == 0) return;
    while (!(reg(LSR).read() & kLsrThrEmpty)) arch::pause();
    reg(RBR_THR).write(static_cast<std::uint8_t>(c));
}

void write(std::string_view text) {
    for (char c : text) {
        if (c == '\n') put_char('\r'); // terminals in raw mode need CR LF
        put_char(c);
    }
}

std::optional<char> try_read() {
    std::uint32_t tail = g_rx.tail.load(std::memory_order_relaxed);
    if (tail == g_rx.head.load(std::memory_order_acquire)) return std::nullopt;
    char c = g_rx.data[tail % kRxSize];
    g_rx.tail.store(tail + 1, std::memory_order_release);
    return c;
}

char read() {
    std::optional<char> c;
    if (!g_blocking || arch::in_interrupt()) {
        arch::wait_until([&] { return (c = try_read()).has_value(); });
        return *c;
    }
    for (;;) {
        if ((c = try_read())) return *c;
        // Registered before the second look: a byte that arrives after it
        // finds the reader and wakes it (the wake is remembered if it
        // comes before block()).
        g_reader.store(g_blocking->current(), std::memory_order_release);
        if ((c = try_read())) {
            g_reader.store(kNoReader, std::memory_order_relaxed);
            return *c;
        }
        g_blocking->block();
    }
}

void set_reader_blocking(const ReaderBlocking* blocking) { g_blocking = blocking; }

Stats stats() { return g_stats; }

} // namespace tessera::plat::console

namespace tessera::plat {

// Init step plat.console_rx: switch input from nothing to interrupts.
base::Result<void> init_console_rx() {
    const MachineInfo& m = machine();
    // Without an ns16550a in the device tree, keep the early console: it
    // is the only way left to report anything.
    if (m.uart_base != 0 && m.uart_base != console::g_base) console::init_early(m.uart_base);
    if (m.uart_irq == 0 || m.plic_base == 0) return {}; // polled output only
    TRY(irq::attach(m.uart_irq, console::on_rx_interrupt, nullptr));
    console::reg(console::MCR).write(console::kMcrOut2);
    console::reg(console::IER).write(console::kIerRxAvailable);
    return {};
}

} // namespace tessera::plat
