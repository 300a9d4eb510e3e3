// Device discovery: everything the platform needs comes from the device
// tree, so the same image runs with any -m, -smp or device set.
#include "internal.hpp"
#include <base/string.hpp>
#include <fdt/fdt.hpp>
#include <klog/klog.hpp>

namespace tessera::plat {

constinit MachineInfo detail::g_machine = {};
using detail::g_machine;

namespace {
constinit BootTimes g_boot_times = {};
} // namespace

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

// A hart the kernel can run on: enabled, and with an MMU (mmu-type), which
// also means S-mode. Sv48 and Sv57 harts implement Sv39 too (privileged
// spec: each larger scheme requires the smaller ones), which is all the
// kernel uses.
bool hart_is_usable(std::string_view status, std::string_view mmu_type) {
    if (!status.empty() && status != "okay" && status != "ok") return false;
    return !mmu_type.empty() && mmu_type != "riscv,none";
}

Result<void> discover_cpus(const fdt::Node& cpus, std::uint64_t boot_hart, std::uint32_t (&intc_phandles)[kMaxHarts],
                           std::uint64_t (&intc_harts)[kMaxHarts], unsigned& intc_count) {
    if (auto tb = cpus.property("timebase-frequency"); tb.ok())
        g_machine.timebase_hz = TRY(tb.value().as_u64());
    // harts[0] is the boot hart whatever the tree says about it (it is
    // running this code), so that dense index 0 is the boot hart; the
    // others follow in tree order.
    g_machine.harts[0] = boot_hart;
    g_machine.hart_count = 1;
    unsigned dropped = 0;
    TRY(cpus.for_each_child([&](const fdt::Node& cpu) {
        auto type = cpu.property("device_type");
        if (!type.ok() || type.value().as_string().value_or("") != "cpu") return true;
        auto reg = cpu.reg();
        if (!reg.ok()) return true;
        std::uint64_t hart = reg.value().base;
        if (hart == boot_hart) {
            if (auto isa = cpu.property("riscv,isa"); isa.ok())
                g_machine.has_sstc = isa_has_extension(isa.value().as_string().value_or(""), "sstc");
            if (g_machine.timebase_hz == 0)
                if (auto tb = cpu.property("timebase-frequency"); tb.ok())
                    g_machine.timebase_hz = tb.value().as_u64().value_or(0);
        } else {
            // Looked up only for the other harts: a one-hart boot pays
            // nothing for them (boot cost: see make bench).
            auto status = cpu.property("status");
            auto mmu_type = cpu.property("mmu-type");
            if (hart_is_usable(status.ok() ? status.value().as_string().value_or("?") : "",
                               mmu_type.ok() ? mmu_type.value().as_string().value_or("") : "")) {
                if (g_machine.hart_count < kMaxHarts)
                    g_machine.harts[g_machine.hart_count++] = hart;
                else
                    ++dropped;
            }
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
    if (dropped) klog::warn("device tree: {} harts beyond the first {} ignored", dropped, kMaxHarts);
    if (g_machine.timebase_hz == 0) return Error::Malformed;
    return {};
}

Result<void> discover_plic(const fdt::Node& plic, std::uint64_t boot_hart,
                           const std::uint32_t (&intc_phandles)[kMaxHarts],
                           const std::uint64_t (&intc_harts)[kMaxHarts], unsigned intc_count) {
    fdt::Region plic_reg = TRY(plic.reg());
    g_machine.plic_base = plic_reg.base;
    g_machine.plic_size = plic_reg.size;
    g_machine.plic_sources = TRY(TRY(plic.property("riscv,ndev")).as_u32());
    // interrupts-extended = <&intc0 11 &intc0 9 &intc1 11 ...>: context i
    // is the i-th pair; we want the boot hart's supervisor external (9).
    fdt::Property ext = TRY(plic.property("interrupts-extended"));
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

// What one pass over the tree found; the nodes are views into the blob.
struct Found {
    fdt::Node plic, uart, test, cpus, reserved_memory;
    bool has_plic = false, has_uart = false, has_test = false, has_cpus = false, has_reserved_memory = false;
    unsigned reserved_dropped = 0;
};

void add_reserved(Found& found, std::uint64_t base, std::uint64_t size) {
    if (size == 0) return;
    if (g_machine.reserved_count == sizeof(g_machine.reserved) / sizeof(g_machine.reserved[0])) {
        ++found.reserved_dropped;
        return;
    }
    g_machine.reserved[g_machine.reserved_count++] = {base, size};
}

} // namespace

Result<void> discover(const void* dtb, std::uint64_t boot_hart) {
    g_machine.boot_hart = boot_hart;
    fdt::Blob dt = TRY(fdt::Blob::from_address(dtb));
    g_machine.dtb = dtb;
    g_machine.dtb_size = dt.total_size();

    // One pass over the whole tree, each token read once, deciding on each
    // node by its "compatible" or "device_type" property as it goes by
    // (boot cost matters: see make bench).
    Found found;
    TRY(dt.walk_properties([&](const fdt::Node& n, unsigned depth, const fdt::Property& p) {
        if (depth == 0 && p.name_is("model")) {
            g_machine.model = p.as_string().value_or("");
            return true;
        }
        if (depth == 1 && n.name() == "chosen" && p.name_is("bootargs")) {
            g_machine.bootargs = p.as_string().value_or("");
            return true;
        }
        if (depth == 1 && n.name() == "cpus" && !found.has_cpus) {
            found.cpus = n;
            found.has_cpus = true;
        }
        if (depth == 1 && n.name() == "reserved-memory" && !found.has_reserved_memory) {
            found.reserved_memory = n;
            found.has_reserved_memory = true;
        }
        if (p.name_is("device_type")) {
            if (depth == 1 && p.as_string().value_or("") == "memory") {
                for (std::size_t i = 0; g_machine.memory_count < 4; ++i) {
                    auto r = n.reg(i);
                    if (!r.ok()) break;
                    g_machine.memory[g_machine.memory_count++] = {r.value().base, r.value().size};
                }
            }
            return true;
        }
        if (!p.name_is("compatible")) return true;
        static constexpr std::string_view kKnown[] = {"riscv,plic0", "sifive,plic-1.0.0", "ns16550a",
                                                      "sifive,test0", "virtio,mmio"};
        auto which = p.match_string(kKnown);
        if (!which.ok()) return true;
        std::size_t k = which.value();
        if (k <= 1 && !found.has_plic) {
            found.plic = n;
            found.has_plic = true;
        } else if (k == 2 && !found.has_uart) {
            found.uart = n;
            found.has_uart = true;
        } else if (k == 3 && !found.has_test) {
            found.test = n;
            found.has_test = true;
        } else if (k == 4 && g_machine.virtio_count < 8) {
            if (auto reg = n.reg(); reg.ok())
                g_machine.virtio[g_machine.virtio_count++] = {reg.value().base, reg.value().size,
                                                              first_interrupt(n)};
        }
        return true;
    }));
    if (g_machine.memory_count == 0) return Error::Malformed;

    std::uint32_t intc_phandles[kMaxHarts] = {};
    std::uint64_t intc_harts[kMaxHarts] = {};
    unsigned intc_count = 0;
    if (!found.has_cpus) return Error::Malformed;
    TRY(discover_cpus(found.cpus, boot_hart, intc_phandles, intc_harts, intc_count));
    if (found.has_plic) TRY(discover_plic(found.plic, boot_hart, intc_phandles, intc_harts, intc_count));
    if (found.has_uart) {
        g_machine.uart_base = TRY(found.uart.reg()).base;
        g_machine.uart_irq = first_interrupt(found.uart);
    }
    if (found.has_test) g_machine.test_base = TRY(found.test.reg()).base;

    TRY(dt.for_each_reservation([&](const fdt::Region& r) {
        add_reserved(found, r.base, r.size);
        return true;
    }));
    if (found.has_reserved_memory) {
        TRY(found.reserved_memory.for_each_child([&](const fdt::Node& child) {
            for (std::size_t i = 0;; ++i) {
                auto r = child.reg(i);
                if (!r.ok()) break;
                add_reserved(found, r.value().base, r.value().size);
            }
            return true;
        }));
    }
    if (found.reserved_dropped)
        klog::warn("device tree: {} reserved memory ranges beyond the first {} ignored", found.reserved_dropped,
                   g_machine.reserved_count);

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
