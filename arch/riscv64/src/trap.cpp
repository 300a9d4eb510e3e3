#include <arch/backtrace.hpp>
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <arch/trap.hpp>
#include <base/verify.hpp>
#include <klog/klog.hpp>
#include <plat/power.hpp>

namespace tessera::arch {

namespace {

constinit InterruptHandler g_handlers[16] = {};
constinit AddressDescriber g_describer = nullptr;

constexpr const char* kRegNames[32] = {
    "zero", "ra", "sp", "gp", "tp", "t0", "t1", "t2", "s0", "s1", "a0", "a1", "a2", "a3", "a4", "a5",
    "a6", "a7", "s2", "s3", "s4", "s5", "s6", "s7", "s8", "s9", "s10", "s11", "t3", "t4", "t5", "t6",
};

} // namespace

std::string_view exception_name(std::uint64_t code) {
    switch (code) {
    case 0: return "instruction address misaligned";
    case 1: return "instruction access fault";
    case 2: return "illegal instruction";
    case 3: return "breakpoint";
    case 4: return "load address misaligned";
    case 5: return "load access fault";
    case 6: return "store/AMO address misaligned";
    case 7: return "store/AMO access fault";
    case 8: return "environment call from U-mode";
    case 9: return "environment call from S-mode";
    case 12: return "instruction page fault";
    case 13: return "load page fault";
    case 15: return "store/AMO page fault";
    default: return "unknown exception";
    }
}

void set_interrupt_handler(Interrupt which, InterruptHandler handler) {
    auto n = static_cast<unsigned>(which);
    VERIFY(n < 16);
    g_handlers[n] = handler;
    if (handler)
        csr_set<Csr::sie>(sie_bit(which));
    else
        csr_clear<Csr::sie>(sie_bit(which));
}

void set_address_describer(AddressDescriber describer) { g_describer = describer; }
void set_interrupt_exit_hook(InterruptExitHook hook) { this_hart().interrupt_exit = hook; }

InterruptHandler interrupt_handler(Interrupt which) {
    auto n = static_cast<unsigned>(which);
    VERIFY(n < 16);
    return g_handlers[n];
}

void report_trap(const TrapFrame& frame) {
    klog::print("\n*** {} (scause {:#x}) on hart {} in thread '{}'\n",
                frame.is_interrupt() ? std::string_view("unexpected interrupt") : exception_name(frame.code()),
                frame.scause, this_hart().hart_id, this_hart().thread_name);
    klog::print("    sepc {:#018x}  stval {:#018x}  sstatus {:#018x}\n", frame.sepc, frame.stval,
                frame.sstatus);
    // Access and page faults: say what the address is, if anyone knows.
    std::uint64_t code = frame.code();
    bool memory_fault = !frame.is_interrupt() && (code == 1 || code == 5 || code == 7 || code >= 12);
    if (memory_fault && g_describer)
        if (const char* what = g_describer(frame.stval)) klog::print("    stval is in {}\n", what);
    for (unsigned i = 1; i < 32; i += 4) {
        klog::print("    ");
        for (unsigned j = i; j < i + 4 && j < 32; ++j)
            klog::print("{:>4} {:016x}  ", kRegNames[j], frame.x[j]);
        klog::print("\n");
    }
    klog::print("Backtrace:\n    #0  {:#018x} (pc)\n", frame.sepc);
    print_backtrace(frame.x[8], 1, frame.x[1]);
}

} // namespace tessera::arch

using namespace tessera;

extern "C" void tessera_trap(arch::TrapFrame* frame) {
    arch::Hart& hart = arch::this_hart();
    // The trap cleared SIE; the handlers and the exit hook also run masked
    // (an interrupt that came while masked never gets here: trap_entry.S
    // holds it back).
    hart.irq_masked = 1;
    hart.sie_off = 1;
    ++hart.trap_depth;
    if (frame->is_interrupt()) {
        ++hart.interrupts;
        std::uint64_t code = frame->code();
        arch::InterruptHandler handler = code < 16 ? arch::g_handlers[code] : nullptr;
        if (handler) [[likely]] {
            handler(*frame);
            --hart.trap_depth;
            if (hart.interrupt_exit) hart.interrupt_exit();
            // The hook may have switched to other threads and back (maybe
            // on another hart), and one of them may have set SIE: clear it,
            // so nothing nests from here to the sret, which sets it again
            // (the interrupted code ran unmasked, so SPIE is set) and
            // leaves this hart unmasked.
            arch::csr_clear<arch::Csr::sstatus>(arch::sstatus::SIE);
            arch::Hart& now = arch::this_hart();
            now.sie_off = 0;
            now.irq_masked = 0;
            return;
        }
    }
    klog::enter_panic_mode();
    if (hart.reporting) {
        // Faulted while printing a report: say the least and stop.
        klog::print("\n*** nested fault (scause {:#x} sepc {:#x}) while reporting a fault\n",
                    frame->scause, frame->sepc);
        plat::exit_machine(plat::kExitPanic);
    }
    hart.reporting = true;
    arch::report_trap(*frame);
    klog::print("*** Kernel panic: unhandled {} — stopping (exit status {})\n",
                frame->is_interrupt() ? "interrupt" : "exception", plat::kExitPanic);
    plat::exit_machine(plat::kExitPanic);
}

// Entered from trap_entry.S on the emergency stack when a trap found the
// current stack exhausted (sp below the hart's stack limit + one frame).
extern "C" [[noreturn]] void tessera_stack_overflow(arch::TrapFrame* frame) {
    arch::Hart& hart = arch::this_hart();
    klog::enter_panic_mode();
    klog::print("\n*** stack overflow in thread '{}' on hart {}: sp {:#x} is below the stack limit {:#x}\n",
                hart.thread_name, hart.hart_id, frame->sp(), hart.stack_limit);
    if (hart.reporting) plat::exit_machine(plat::kExitPanic);
    hart.reporting = true;
    arch::report_trap(*frame);
    klog::print("*** Kernel panic: stack overflow — stopping (exit status {})\n", plat::kExitPanic);
    plat::exit_machine(plat::kExitPanic);
}
