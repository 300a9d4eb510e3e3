// Device discovery: everything the platform needs comes from the device
// tree, so the same image runs with any -m, -smp or device set.
#include "internal.hpp"
#include <base/string.hpp>
#include <fdt/fdt.hpp>
#include <klog/klog.hpp>

namespace tessera::plat {

namespace {
constinit MachineInfo g_machine = {};
constinit BootTimes g_boot_times = {};
} // namespace

const MachineInfo& machine() { return g_machine; }
const BootTimes& boot_times() { return g_boot_times; }
BootTimes& mutable_boot_times() { return g_boot_times; }

std::string_view boot_option(std::string_view key) {
    return base::cmdline_value(g_machine.bootargs, key).value_or({});
}

bool has_boot_option(std::string_view key) { return base::cmdline_value(g_machine.bootargs, key).ok(); }

namespace {

using base::Error;
using base::Result;

bool isa_has_extension(std::string_view isa, std::string_view ext) {
    // "rv64imafdch_zicsr_..._sstc": multi-letter extensions follow '_'.
    std::size_t underscore = isa.find('_');
    if (underscore == std::string_view::npos) return false;
    std::string_view rest = isa.substr(underscore + 1);
    while (!rest.empty())
        if (base::next_token(rest, '_') == ext) return true;
    return false;
}

Result<void> discover_cpus(const fdt::Blob& dt, std::uint64_t boot_hart, std::uint32_t (&intc_phandles)[kMaxHarts],
                           std::uint64_t (&intc_harts)[kMaxHarts], unsigned& intc_count) {
    fdt::Node cpus = TRY(dt.find_path("/cpus"));
    if (auto tb = cpus.property("timebase-frequency"); tb.ok())
        g_machine.timebase_hz = TRY(tb.value().as_u64());
    TRY(cpus.for_each_child([&](const fdt::Node& cpu) {
        auto type = cpu.property("device_type");
        if (!type.ok() || type.value().as_string().value_or("") != "cpu") return true;
        auto reg = cpu.reg();
        if (!reg.ok()) return true;
        ++g_machine.hart_count;
        std::uint64_t hart = reg.value().base;
        if (hart == boot_hart) {
            if (auto isa = cpu.property("riscv,isa"); isa.ok())
                g_machine.has_sstc = isa_has_extension(isa.value().as_string().value_or(""), "sstc");
            if (g_machine.timebase_hz == 0)
                if (auto tb = cpu.property("timebase-frequency"); tb.ok())
                    g_machine.timebase_hz = tb.value().as_u64().value_or(0);
        }
        (void)cpu.for_each_child([&](const fdt::Node& intc) {
            auto ph = intc.phandle();
            if (intc.is_compatible("riscv,cpu-intc") && ph.ok() && intc_count < kMaxHarts) {
                intc_phandles[intc_count] = ph.value();
                intc_harts[intc_count++] = hart;
            }
            return true;
        });
        return true;
    }));
    if (g_machine.timebase_hz == 0) return Error::Malformed;
    return {};
}

Result<void> discover_plic(const fdt::Blob& dt, std::uint64_t boot_hart, const std::uint32_t (&intc_phandles)[kMaxHarts],
                           const std::uint64_t (&intc_harts)[kMaxHarts], unsigned intc_count) {
    auto plic = dt.find_compatible("riscv,plic0");
    if (!plic.ok()) plic = dt.find_compatible("sifive,plic-1.0.0");
    if (!plic.ok()) return {}; // no PLIC: external interrupts unavailable
    g_machine.plic_base = TRY(plic.value().reg()).base;
    g_machine.plic_sources = TRY(TRY(plic.value().property("riscv,ndev")).as_u32());
    // interrupts-extended = <&intc0 11 &intc0 9 &intc1 11 ...>: context i
    // is the i-th pair; we want the boot hart's supervisor external (9).
    fdt::Property ext = TRY(plic.value().property("interrupts-extended"));
    for (std::size_t i = 0; 2 * i + 1 < ext.cell_count(); ++i) {
        std::uint32_t phandle = ext.cell(2 * i).value();
        std::uint32_t cause = ext.cell(2 * i + 1).value();
        for (unsigned k = 0; k < intc_count; ++k) {
            if (intc_phandles[k] == phandle && intc_harts[k] == boot_hart &&
                cause == static_cast<unsigned>(arch::Interrupt::External)) {
                g_machine.plic_context = static_cast<std::uint32_t>(i);
                return {};
            }
        }
    }
    return Error::NotFound;
}

std::uint32_t first_interrupt(const fdt::Node& node) {
    auto p = node.property("interrupts");
    return p.ok() ? p.value().cell(0).value_or(0) : 0;
}

} // namespace

Result<void> discover(const void* dtb, std::uint64_t boot_hart) {
    g_machine.boot_hart = boot_hart;
    fdt::Blob dt = TRY(fdt::Blob::from_address(dtb));
    g_machine.dtb = dtb;
    g_machine.dtb_size = dt.total_size();

    fdt::Node root = TRY(dt.root());
    if (auto model = root.property("model"); model.ok()) g_machine.model = model.value().as_string().value_or("");
    if (auto chosen = dt.find_path("/chosen"); chosen.ok())
        if (auto args = chosen.value().property("bootargs"); args.ok())
            g_machine.bootargs = args.value().as_string().value_or("");

    TRY(dt.walk([&](const fdt::Node& n, unsigned depth) {
        auto type = n.property("device_type");
        if (depth == 1 && type.ok() && type.value().as_string().value_or("") == "memory") {
            for (std::size_t i = 0; g_machine.memory_count < 4; ++i) {
                auto r = n.reg(i);
                if (!r.ok()) break;
                g_machine.memory[g_machine.memory_count++] = {r.value().base, r.value().size};
            }
        }
        return true;
    }));
    if (g_machine.memory_count == 0) return Error::Malformed;

    std::uint32_t intc_phandles[kMaxHarts] = {};
    std::uint64_t intc_harts[kMaxHarts] = {};
    unsigned intc_count = 0;
    TRY(discover_cpus(dt, boot_hart, intc_phandles, intc_harts, intc_count));
    TRY(discover_plic(dt, boot_hart, intc_phandles, intc_harts, intc_count));

    if (auto uart = dt.find_compatible("ns16550a"); uart.ok()) {
        g_machine.uart_base = TRY(uart.value().reg()).base;
        g_machine.uart_irq = first_interrupt(uart.value());
    }
    if (auto test = dt.find_compatible("sifive,test0"); test.ok())
        g_machine.test_base = TRY(test.value().reg()).base;

    fdt::Node after;
    const fdt::Node* cursor = nullptr;
    while (g_machine.virtio_count < 8) {
        auto slot = dt.find_compatible("virtio,mmio", cursor);
        if (!slot.ok()) break;
        after = slot.value();
        cursor = &after;
        auto reg = after.reg();
        if (!reg.ok()) continue;
        g_machine.virtio[g_machine.virtio_count++] = {reg.value().base, reg.value().size, first_interrupt(after)};
    }
    // QEMU lists the slots from the highest address down; number them by
    // address so that slot n is the n-th -device virtio-*-device.
    for (unsigned i = 1; i < g_machine.virtio_count; ++i)
        for (unsigned k = i; k > 0 && g_machine.virtio[k - 1].base > g_machine.virtio[k].base; --k) {
            VirtioSlot t = g_machine.virtio[k];
            g_machine.virtio[k] = g_machine.virtio[k - 1];
            g_machine.virtio[k - 1] = t;
        }
    return {};
}

} // namespace tessera::plat
