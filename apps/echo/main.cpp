// Echoes console input line by line. The UART receive interrupt fills a
// ring; main() sleeps in wfi between bytes, so the machine is idle while it
// waits (QMP tests rely on it staying alive).
#include <base/string.hpp>
#include <klog/klog.hpp>
#include <plat/console.hpp>
#include <plat/power.hpp>

using namespace tessera;

int main() {
    klog::print("echo: ready\n");
    char line[128];
    std::size_t length = 0;
    for (;;) {
        char c = plat::console::read();
        if (c != '\r' && c != '\n') {
            if (length < sizeof(line)) line[length++] = c;
            continue;
        }
        std::string_view text(line, length);
        length = 0;
        if (text.empty()) continue;
        auto stats = plat::console::stats();
        klog::print("echo: {} (rx {} bytes, {} interrupts)\n", text, stats.rx_bytes, stats.rx_interrupts);
        if (text.substr(0, 5) == "exit ") {
            auto status = base::parse_unsigned(text.substr(5));
            return status.ok() ? static_cast<int>(status.value() & 0xff) : 2;
        }
        if (text == "reboot") plat::reboot();
    }
}
