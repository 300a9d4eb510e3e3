#include <arch/csr.hpp>
#include <arch/hart.hpp>
#include <arch/sbi.hpp>
#include <arch/sv39.hpp>
#include <atomic>
#include <base/verify.hpp>

namespace tessera::arch {

namespace {
constinit Hart g_harts[kMaxHarts];
// Where a hart reports a stack overflow from (its own stack is exhausted).
constexpr std::size_t kEmergencyStack = 8192;
alignas(16) NOINIT char g_emergency_stacks[kMaxHarts][kEmergencyStack];
// Bit n: hart id n runs kernel code. Only ever grows (no hart stops).
constinit std::atomic<std::uint64_t> g_running_mask{0};
} // namespace

extern "C" void _start();
extern "C" void _start_secondary();

// The start block of each hart id, read by the entry code (entry.S), which
// takes it from here rather than from the firmware's argument. A slot is
// written before its hart_start and cleared by the hart once it has copied
// the block.
extern "C" {
constinit std::atomic<const SecondaryStart*> tessera_start_blocks[64]{};
// Harts that lost the boot lottery in _start (entry.S counts them).
constinit std::atomic<std::uint32_t> tessera_late_kernel_entries{0};
}
static_assert(sizeof(std::atomic<const SecondaryStart*>) == 8, "entry.S indexes the slots by 8 bytes");

void init_hart(unsigned index, std::uint64_t hart_id, std::uint64_t stack_limit) {
    VERIFY(index < kMaxHarts);
    Hart& h = g_harts[index];
    h.hart_id = hart_id;
    h.index = index;
    h.stack_limit = stack_limit;
    h.emergency_stack_top = reinterpret_cast<std::uint64_t>(g_emergency_stacks[index] + kEmergencyStack);
    if (index != 0) h.thread_name = "secondary";
    asm volatile("mv tp, %0" ::"r"(&h));
    // Sequentially consistent, and before a secondary loads satp: a hart
    // that changes the page tables and then reads the mask either sees
    // this hart (and shoots its TLB down) or made its change before this
    // hart's first table walk (libs/mmu).
    if (hart_id < 64) g_running_mask.fetch_or(std::uint64_t(1) << hart_id, std::memory_order_seq_cst);
}

std::uint64_t running_hart_mask() { return g_running_mask.load(std::memory_order_seq_cst); }

unsigned late_kernel_entries() { return tessera_late_kernel_entries.load(std::memory_order_relaxed); }

base::Result<void> start_secondary(std::uint64_t hart_id, const SecondaryStart& start, StartAt at) {
    if (start.index == 0 || start.index >= kMaxHarts || !start.entry || start.stack_top % 16 ||
        start.stack_limit >= start.stack_top || hart_id >= 64)
        return base::Error::InvalidArgument;
    // The block (and the stack) must be visible to the new hart, which
    // starts with translation off, before the firmware can let it go; the
    // firmware call is no fence by spec.
    tessera_start_blocks[hart_id].store(&start, std::memory_order_relaxed);
    asm volatile("fence rw, rw" ::: "memory");
    auto started = at == StartAt::KernelEntry
                       ? sbi::hart_start(hart_id, reinterpret_cast<std::uint64_t>(&_start), 0)
                       : sbi::hart_start(hart_id, reinterpret_cast<std::uint64_t>(&_start_secondary),
                                         reinterpret_cast<std::uint64_t>(&start));
    // Refused: the hart is not coming (or already runs, with its own copy).
    if (!started.ok()) tessera_start_blocks[hart_id].store(nullptr, std::memory_order_relaxed);
    return started;
}

} // namespace tessera::arch

using namespace tessera;

// Called by _start_secondary (entry.S) on the new hart's own stack, with tp
// not yet set and translation off.
extern "C" [[noreturn]] void tessera_secondary_entry(std::uint64_t hart_id, const arch::SecondaryStart* start) {
    // Copied first: the block belongs to the starter, who may reuse it once
    // `entry` runs.
    const arch::SecondaryStart block = *start;
    arch::tessera_start_blocks[hart_id].store(nullptr, std::memory_order_relaxed);
    arch::init_hart(block.index, hart_id, block.stack_limit);
    // After init_hart, which put this hart in the running mask: see there.
    if (block.satp) arch::sv39::load_satp(block.satp);
    // The firmware leaves this hart's timer deadline as it was (0 with Sstc
    // under QEMU, i.e. due at once): push it out of reach before STIE is
    // set. The timer is armed later by whoever runs this hart.
    (void)arch::sbi::set_timer(~std::uint64_t(0));
    arch::csr_set<arch::Csr::sie>(arch::sie_bit(arch::Interrupt::Software) | arch::sie_bit(arch::Interrupt::Timer));
    block.entry(block.index);
    VERIFY_NOT_REACHED();
}
