// The __ubsan_handle_* entry points GCC 12 calls from -fsanitize=undefined
// checks (the list in gcc/sanitizer.def minus vptr, which needs RTTI).
// Each recoverable check has a plain handler and an _abort variant; the
// compiler calls the latter under -fno-sanitize-recover, which lib.mk sets
// in panic mode.
//
// Built without instrumentation (lib.mk). The report path still runs
// instrumented code (klog, base::format, the console driver), so a check
// can fail while a report is being written; a per-hart depth counter turns
// that into a "nested" count instead of endless recursion.
//
// Context: callable from anywhere, interrupt handlers included. A report
// allocates nothing (a fixed buffer on the stack) and runs with interrupts
// off on its hart.
#include "abi.hpp"
#include "describe.hpp"
#include "sites.hpp"
#include <arch/cpu.hpp>
#include <arch/hart.hpp>
#include <atomic>
#include <base/verify.hpp>
#include <klog/klog.hpp>
#include <plat/console.hpp>
#include <plat/power.hpp>
#include <ubsan/ubsan.hpp>

namespace tessera::ubsan {

namespace {

using abi::ValueHandle;
using base::Sink;

#if CONFIG_UBSAN_MODE_REPORT
constexpr bool kContinueAfterReport = true;

constinit detail::SiteSet<CONFIG_UBSAN_REPORT_SITES> g_reported_sites;

// False if another copy of the check at this location (see sites.hpp)
// has already reported. A full table reports again rather than go silent.
bool first_report_from(const abi::SourceLocation& loc, std::uint32_t column) {
    auto key = detail::site_key(loc.file, loc.line, column);
    return g_reported_sites.insert(key) != decltype(g_reported_sites)::Insert::Present;
}
#else
constexpr bool kContinueAfterReport = false;

bool first_report_from(const abi::SourceLocation&, std::uint32_t) { return true; }
#endif

enum class Recover : bool { No, Yes };

constinit std::atomic<std::uint64_t> g_reports{0};
constinit std::atomic<std::uint64_t> g_repeats{0};
constinit std::atomic<std::uint64_t> g_nested{0};

// How deep each hart is in the report path. An entry is touched only by its
// own hart with interrupts off, so plain bytes suffice.
constinit std::uint8_t g_depth[arch::kMaxHarts] = {};

std::uint8_t& depth_of_this_hart() {
    unsigned index = arch::this_hart().index;
    return g_depth[index < arch::kMaxHarts ? index : 0];
}

// Writes straight to the UART, bypassing the log lock (see Report::finish).
class ConsoleSink final : public Sink {
public:
    void write(std::string_view text) override { plat::console::write(text); }
};

constexpr std::string_view kReportFormat = "\n*** UBSan: {}{}\n    at {}:{}:{}\n";

// One failed check, from the decision whether to report it to the output.
// Construct, ask wanted(), describe into sink(), then finish().
class Report {
public:
    Report(abi::SourceLocation& loc, Recover recover)
        : m_loc(loc), m_fatal(recover == Recover::No || !kContinueAfterReport),
          m_irqs_were_enabled(arch::irqs_enabled()), m_depth(depth_of_this_hart()) {
        if (m_depth != 0) {
            nested_failure();
            return;
        }
        if (m_fatal) {
            m_column = loc.column;
        } else {
            // Claim the descriptor: the first failure swaps the column out,
            // every later one finds kColumnReported (the cheap path for a
            // check failing again). Then claim the location, which other
            // descriptors may share. Both atomic: two harts failing at one
            // location still report once.
            m_column = std::atomic_ref<std::uint32_t>(loc.column)
                           .exchange(abi::kColumnReported, std::memory_order_relaxed);
            if (m_column == abi::kColumnReported || !first_report_from(loc, m_column)) {
                g_repeats.fetch_add(1, std::memory_order_relaxed);
                return;
            }
        }
        ++m_depth;
        m_wanted = true;
    }

    ~Report() {
        if (m_wanted) --m_depth;
    }

    Report(const Report&) = delete;
    Report& operator=(const Report&) = delete;

    [[nodiscard]] bool wanted() const { return m_wanted; }
    Sink& sink() { return m_sink; }

    // Prints the report and, unless the check is recoverable in report
    // mode, panics (exit status 70).
    void finish(const char* title) {
        g_reports.fetch_add(1, std::memory_order_relaxed);
        const char* file = m_loc.file ? m_loc.file : "<unknown file>";
        std::string_view more = m_sink.truncated() ? " [...]" : "";
        if (m_fatal) {
            // The code that failed the check may hold the log lock (klog
            // is instrumented too): print the way panics do, lock ignored.
            klog::enter_panic_mode();
            klog::print(kReportFormat, m_sink.view(), more, file, m_loc.line, m_column);
            // The depth stays raised: a check failing in the panic report
            // itself ends in nested_failure(), not in a second report.
            panic_at(file, static_cast<int>(m_loc.line), title);
        }
        // The log lock is a spinlock, held only with interrupts off. So if
        // they were on when the check failed, this hart does not hold it
        // and klog is safe. If they were off, the failing code may be klog
        // itself, under its lock: write to the console directly (the
        // report then misses the log ring and may interleave with another
        // hart's line, but cannot deadlock).
        if (m_irqs_were_enabled) {
            klog::print(kReportFormat, m_sink.view(), more, file, m_loc.line, m_column);
        } else {
            ConsoleSink console;
            base::format_to(console, kReportFormat, m_sink.view(), more, file, m_loc.line, m_column);
        }
    }

private:
    // A check failed while this hart was writing a report.
    void nested_failure() {
        g_nested.fetch_add(1, std::memory_order_relaxed);
        if (!m_fatal) return; // dropped: reporting it would recurse
        if (m_depth == 1) {
            ++m_depth; // if the console write itself fails a check, stay silent
            plat::console::write("\n*** UBSan: undefined behaviour while reporting undefined behaviour\n");
        }
        plat::exit_machine(plat::kExitPanic);
    }

    abi::SourceLocation& m_loc;
    const bool m_fatal;
    const bool m_irqs_were_enabled; // read before m_irq turns them off
    arch::IrqGuard m_irq;           // one report per hart at a time, no interrupt nests in
    std::uint8_t& m_depth;          // after m_irq: this hart cannot change under us
    bool m_wanted = false;
    std::uint32_t m_column = 0;
    char m_buffer[256];
    base::BufferSink m_sink{m_buffer};
};

template <typename Describe>
void handle(abi::SourceLocation& loc, Recover recover, Describe&& describe) {
    Report report(loc, recover);
    if (report.wanted()) report.finish(describe(report.sink()));
}

template <typename Describe>
[[noreturn]] void handle_fatal(abi::SourceLocation& loc, Describe&& describe) {
    handle(loc, Recover::No, describe);
    VERIFY_NOT_REACHED(); // a fatal report panics or stops the machine
}

} // namespace

Stats stats() {
    return {g_reports.load(std::memory_order_relaxed), g_repeats.load(std::memory_order_relaxed),
            g_nested.load(std::memory_order_relaxed)};
}

} // namespace tessera::ubsan

using namespace tessera::ubsan;
using tessera::ubsan::abi::ValueHandle;

// Defines __ubsan_handle_<name>, which reports and (in report mode) returns,
// and __ubsan_handle_<name>_abort, which reports and panics. `describe` is
// an expression over the handler's parameters and `sink`.
#define UBSAN_HANDLER_PAIR(name, params, loc, describe)                                     \
    extern "C" void __ubsan_handle_##name params {                                         \
        handle(loc, Recover::Yes, [&](Sink& sink) { return describe; });                   \
    }                                                                                      \
    extern "C" [[noreturn]] void __ubsan_handle_##name##_abort params {                    \
        handle_fatal(loc, [&](Sink& sink) { return describe; });                           \
    }

UBSAN_HANDLER_PAIR(type_mismatch_v1, (abi::TypeMismatchData * data, ValueHandle pointer), data->loc,
                   detail::describe_type_mismatch(sink, *data, pointer))
UBSAN_HANDLER_PAIR(add_overflow, (abi::OverflowData * data, ValueHandle lhs, ValueHandle rhs), data->loc,
                   detail::describe_overflow(sink, *data, '+', lhs, rhs))
UBSAN_HANDLER_PAIR(sub_overflow, (abi::OverflowData * data, ValueHandle lhs, ValueHandle rhs), data->loc,
                   detail::describe_overflow(sink, *data, '-', lhs, rhs))
UBSAN_HANDLER_PAIR(mul_overflow, (abi::OverflowData * data, ValueHandle lhs, ValueHandle rhs), data->loc,
                   detail::describe_overflow(sink, *data, '*', lhs, rhs))
UBSAN_HANDLER_PAIR(negate_overflow, (abi::OverflowData * data, ValueHandle value), data->loc,
                   detail::describe_negate_overflow(sink, *data, value))
UBSAN_HANDLER_PAIR(divrem_overflow, (abi::OverflowData * data, ValueHandle lhs, ValueHandle rhs), data->loc,
                   detail::describe_divrem_overflow(sink, *data, lhs, rhs))
UBSAN_HANDLER_PAIR(shift_out_of_bounds, (abi::ShiftOutOfBoundsData * data, ValueHandle lhs, ValueHandle rhs),
                   data->loc, detail::describe_shift_out_of_bounds(sink, *data, lhs, rhs))
UBSAN_HANDLER_PAIR(out_of_bounds, (abi::OutOfBoundsData * data, ValueHandle index), data->loc,
                   detail::describe_out_of_bounds(sink, *data, index))
UBSAN_HANDLER_PAIR(load_invalid_value, (abi::InvalidValueData * data, ValueHandle value), data->loc,
                   detail::describe_load_invalid_value(sink, *data, value))
UBSAN_HANDLER_PAIR(vla_bound_not_positive, (abi::VlaBoundData * data, ValueHandle bound), data->loc,
                   detail::describe_vla_bound(sink, *data, bound))
UBSAN_HANDLER_PAIR(nonnull_arg, (abi::NonNullArgData * data), data->loc, detail::describe_nonnull_arg(sink, *data))
UBSAN_HANDLER_PAIR(nonnull_return_v1, (abi::NonNullReturnData * data, abi::SourceLocation* loc), *loc,
                   detail::describe_nonnull_return(sink, *data))
UBSAN_HANDLER_PAIR(pointer_overflow, (abi::PointerOverflowData * data, ValueHandle base, ValueHandle result),
                   data->loc, detail::describe_pointer_overflow(sink, base, result))
UBSAN_HANDLER_PAIR(invalid_builtin, (abi::InvalidBuiltinData * data), data->loc,
                   detail::describe_invalid_builtin(sink, *data))
UBSAN_HANDLER_PAIR(float_cast_overflow, (abi::FloatCastOverflowData * data, ValueHandle from), data->loc,
                   detail::describe_float_cast_overflow(sink, *data, from))

// Execution cannot meaningfully continue after these two: always fatal.
extern "C" [[noreturn]] void __ubsan_handle_builtin_unreachable(abi::UnreachableData* data) {
    handle_fatal(data->loc, [](Sink& sink) { return detail::describe_unreachable(sink); });
}

extern "C" [[noreturn]] void __ubsan_handle_missing_return(abi::UnreachableData* data) {
    handle_fatal(data->loc, [](Sink& sink) { return detail::describe_missing_return(sink); });
}
