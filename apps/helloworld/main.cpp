// The smallest useful Tessera application: says hello, shows what this image
// was built from, and exits with status 0 (QEMU exits 0 too).
#include <klog/klog.hpp>
#include <plat/boot.hpp>
#include <plat/machine.hpp>
#include <plat/timer.hpp>

using namespace tessera;

int main() {
    const auto& manifest = plat::boot::manifest();
    const auto& m = plat::machine();
    klog::print("\nHello from Tessera! app={} version={}\n", manifest.app, manifest.version);
    klog::print("machine: {}, {} hart(s), {} MiB RAM, timebase {} Hz{}\n", m.model, m.hart_count,
                m.memory[0].size >> 20, m.timebase_hz, m.has_sstc ? ", sstc" : "");
    for (unsigned i = 0; i < m.reserved_count; ++i)
        klog::print("reserved: {:#x}-{:#x}\n", m.reserved[i].base, m.reserved[i].base + m.reserved[i].size);
    klog::print("libraries:");
    for (auto lib : manifest.libraries) klog::print(" {}", lib);
    klog::print("\nconfig:\n");
    for (const auto& entry : manifest.config) klog::print("  CONFIG_{}={}\n", entry.name, entry.value);

    const auto& t = plat::boot_times();
    klog::print("boot: {} ticks from kernel entry to main ({} ns)\n", t.main_ticks - t.entry_ticks,
                plat::timer::ticks_to_ns(t.main_ticks - t.entry_ticks));
    // Exact instruction counts only under QEMU -icount (host-derived otherwise).
    klog::print("boot: instret {} at kernel entry, {} at main\n", t.entry_instret, t.main_instret);
    klog::print("Goodbye.\n");
    return 0;
}
