#include <arch/hart.hpp>
#include <arch/sbi.hpp>
#include <arch/spinlock.hpp>
#include <arch/sv39.hpp>
#include <arch/trap.hpp>
#include <cstring>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <mmu/mmu.hpp>
#include <plat/machine.hpp>

extern "C" char __image_start[], __text_start[], __text_end[], __rodata_start[], __rodata_end[];
extern "C" char __boot_stack_guard[], __boot_stack_bottom[];

namespace tessera::mmu {

namespace {

using namespace arch::sv39;
using base::Error;
using base::Result;

// Protects the page tables and the statistics. Lock order: above the
// mm-buddy zone locks (tables are allocated under it), base/lock_order.hpp.
constinit arch::Spinlock g_lock;
constinit std::uint64_t* g_root = nullptr;
constinit Stats g_stats = {};

std::uintptr_t addr(const void* p) { return reinterpret_cast<std::uintptr_t>(p); }
std::uintptr_t page_down(std::uintptr_t a) { return a & ~(kPageSize - 1); }
std::uintptr_t page_up(std::uintptr_t a) { return (a + kPageSize - 1) & ~(kPageSize - 1); }

std::uint64_t flags_for(Access access) {
    // A and D are set up front: the hardware then never has to (Svadu is
    // optional), and no mapping is both W and X.
    switch (access) {
    case Access::Read: return V | R | A | G;
    case Access::ReadWrite: return V | R | W | A | D | G;
    case Access::ReadExecute: return V | R | X | A | G;
    case Access::None: return 0;
    }
    return 0;
}

Result<std::uint64_t*> new_table() {
    void* page = TRY(mm_buddy::alloc_pages(0));
    memset(page, 0, kPageSize);
    ++g_stats.table_pages;
    return static_cast<std::uint64_t*>(page);
}

// The entry for `va` at `level` (1 = 2 MiB, 0 = 4 KiB), creating tables on
// the way and splitting a larger leaf into 512 smaller ones with the same
// permissions. Caller holds g_lock.
Result<std::uint64_t*> entry_for(std::uintptr_t va, unsigned level) {
    std::uint64_t* table = g_root;
    for (unsigned l = kLevels - 1; l > level; --l) {
        std::uint64_t& e = table[index_of(va, l)];
        if (!(e & V)) {
            e = make_pte(addr(TRY(new_table())), V);
        } else if (is_leaf(e)) {
            std::uint64_t* lower = TRY(new_table());
            std::uint64_t base = pte_address(e), flags = e & 0x3ff;
            for (unsigned i = 0; i < kEntries; ++i) lower[i] = make_pte(base + i * level_size(l - 1), flags);
            e = make_pte(addr(lower), V);
            ++g_stats.splits;
        }
        table = reinterpret_cast<std::uint64_t*>(pte_address(e));
    }
    return &table[index_of(va, level)];
}

// Whether the 2 MiB slot holding `va` already points at a 4 KiB table.
bool has_small_pages(std::uintptr_t va) {
    std::uint64_t top = g_root[index_of(va, 2)];
    if (!(top & V) || is_leaf(top)) return false;
    std::uint64_t mid = reinterpret_cast<std::uint64_t*>(pte_address(top))[index_of(va, 1)];
    return (mid & V) && !is_leaf(mid);
}

Result<void> set_range(std::uintptr_t va, std::uintptr_t pa, std::size_t size, std::uint64_t flags) {
    if (va % kPageSize || pa % kPageSize || size % kPageSize) return Error::InvalidArgument;
    if (va + size < va || va + size > (std::uintptr_t(1) << 38)) return Error::OutOfRange; // identity, low half
    while (size) {
        bool big = va % level_size(1) == 0 && pa % level_size(1) == 0 && size >= level_size(1) && !has_small_pages(va);
        unsigned level = big ? 1 : 0;
        std::uint64_t* e = TRY(entry_for(va, level));
        *e = flags ? make_pte(pa, flags) : 0;
        va += level_size(level);
        pa += level_size(level);
        size -= level_size(level);
    }
    return {};
}

const char* describe_for_reports(std::uintptr_t a) { return describe(a); }

// After a change to [va, va + size) and the local flush: other harts may
// still hold the old translation (a guard page still mapped, a freed
// stack's guard still unmapped). The firmware returns only once every
// target has flushed. A hart that starts later loads satp after joining the
// running mask, so it either is in `others` or walks the new tables
// (arch::init_hart). Caller holds g_lock: the next update cannot overtake
// this one's shootdown.
void shoot_down(std::uintptr_t va, std::size_t size) {
    std::uint64_t self = arch::this_hart().hart_id;
    std::uint64_t others = arch::running_hart_mask() & ~(self < 64 ? std::uint64_t(1) << self : 0);
    if (!others) return;
    // Without RFENCE, harts would run on stale translations: libs/smp
    // refuses to start secondaries under the MMU when it is missing.
    VERIFY(arch::sbi::remote_sfence_vma(others, 0, va, size).ok());
    ++g_stats.shootdowns;
}

} // namespace

Result<void> map(std::uintptr_t va, std::uintptr_t pa, std::size_t size, Access access) {
    if (access == Access::None) return Error::InvalidArgument;
    arch::SpinlockGuard guard(g_lock);
    if (!g_root) return Error::Unavailable;
    // Flushed even on failure: a range can be partly changed when a table
    // allocation fails midway (the caller gets the error).
    auto result = set_range(va, pa, size, flags_for(access));
    flush_all();
    shoot_down(va, size);
    return result;
}

Result<void> unmap(std::uintptr_t va, std::size_t size) {
    arch::SpinlockGuard guard(g_lock);
    if (!g_root) return Error::Unavailable;
    auto result = set_range(va, 0, size, 0);
    flush_all();
    shoot_down(va, size);
    return result;
}

namespace {
// Reads the tables without the lock: for fault reports, where the faulting
// hart may hold it. A racing update can only make the answer stale.
Access walk_access(std::uintptr_t va) {
    if (!g_root || va >= (std::uintptr_t(1) << 38)) return Access::None;
    std::uint64_t* table = g_root;
    for (unsigned l = kLevels; l-- > 0;) {
        std::uint64_t e = table[index_of(va, l)];
        if (!(e & V)) return Access::None;
        if (is_leaf(e)) {
            if (e & X) return Access::ReadExecute;
            return (e & W) ? Access::ReadWrite : Access::Read;
        }
        table = reinterpret_cast<std::uint64_t*>(pte_address(e));
    }
    return Access::None;
}
} // namespace

Access access_of(std::uintptr_t va) {
    arch::SpinlockGuard guard(g_lock);
    return walk_access(va);
}

Result<Stack> alloc_stack(std::size_t size) {
    if (size == 0 || size > (mm_buddy::kPageSize << mm_buddy::kMaxOrder) - kPageSize) return Error::InvalidArgument;
    std::size_t bytes = page_up(size) + kPageSize; // + the guard page
    void* block = TRY(mm_buddy::alloc_pages(mm_buddy::order_for(bytes)));
    Stack stack{addr(block), addr(block) + kPageSize, addr(block) + (kPageSize << mm_buddy::order_for(bytes))};
    if (auto r = unmap(stack.guard, kPageSize); !r.ok()) {
        mm_buddy::free_pages(block);
        return r.error();
    }
    return stack;
}

void free_stack(const Stack& stack) {
    // The guard page goes back to being ordinary memory before it is freed.
    VERIFY(map(stack.guard, stack.guard, kPageSize, Access::ReadWrite).ok());
    mm_buddy::free_pages(reinterpret_cast<void*>(stack.guard));
}

Stats stats() {
    arch::SpinlockGuard guard(g_lock);
    return g_stats;
}

std::uint64_t satp() {
    arch::SpinlockGuard guard(g_lock);
    return g_stats.enabled ? satp_for(addr(g_root)) : 0;
}

const char* describe(std::uintptr_t a) {
    if (a >= addr(__text_start) && a < addr(__text_end)) return "kernel text (read-only)";
    if (a >= addr(__rodata_start) && a < addr(__rodata_end)) return "kernel read-only data";
    if (a >= addr(__boot_stack_guard) && a < addr(__boot_stack_bottom)) return "the guard page below the boot stack";
    if (a < addr(__image_start) && a >= plat::machine().memory[0].base) return "firmware memory (unmapped)";
    if (a < kPageSize) return "page zero (a null pointer?)";
    if (g_stats.enabled && walk_access(a) == Access::None) return "unmapped memory (a guard page, or no mapping)";
    return nullptr;
}

// Init step mmu.enable: build the kernel map and switch translation on.
Result<void> init_enable() {
    const plat::MachineInfo& m = plat::machine();
    {
        arch::SpinlockGuard guard(g_lock);
        g_root = TRY(new_table());
        // RAM, from the image up (below it is firmware the PMP keeps from us).
        for (unsigned i = 0; i < m.memory_count; ++i) {
            std::uintptr_t begin = page_up(m.memory[i].base), end = page_down(m.memory[i].base + m.memory[i].size);
            if (begin < addr(__image_start) && end > addr(__image_start)) begin = addr(__image_start);
            if (begin < end) TRY(set_range(begin, begin, end - begin, flags_for(Access::ReadWrite)));
        }
        std::uintptr_t text = addr(__text_start), rodata = addr(__rodata_start);
        TRY(set_range(text, text, page_up(addr(__text_end)) - text, flags_for(Access::ReadExecute)));
        TRY(set_range(rodata, rodata, page_up(addr(__rodata_end)) - rodata, flags_for(Access::Read)));
        TRY(set_range(addr(__boot_stack_guard), 0, kPageSize, 0));
        // Devices, exactly as the device tree lists them.
        auto device = [](std::uint64_t base, std::uint64_t size) -> Result<void> {
            if (base == 0 || size == 0) return {};
            std::uintptr_t begin = page_down(base);
            return set_range(begin, begin, page_up(base + size) - begin, flags_for(Access::ReadWrite));
        };
        TRY(device(m.uart_base, 0x100));
        TRY(device(m.plic_base, m.plic_size));
        TRY(device(m.test_base, 0x1000));
        for (unsigned i = 0; i < m.virtio_count; ++i) TRY(device(m.virtio[i].base, m.virtio[i].size));
        enable(addr(g_root));
        g_stats.enabled = true;
    }
    arch::set_address_describer(describe_for_reports);
    Stats s = stats();
    klog::info("mmu: Sv39 on, {} table pages, W^X kernel map, boot stack guard at {}", s.table_pages,
               static_cast<void*>(__boot_stack_guard));
    return {};
}

} // namespace tessera::mmu
