// KTAP v1 output (Linux Documentation/dev-tools/ktap.rst): one subtest per
// suite, one result line per case, diagnostics as "# " lines.
#include <base/string.hpp>
#include <klog/klog.hpp>
#include <ktest/ktest.hpp>
#include <plat/machine.hpp>

extern "C" const tessera::ktest::Case __ktest_start[];
extern "C" const tessera::ktest::Case __ktest_end[];

namespace tessera::ktest {

namespace {

std::span<const Case> all_cases() {
    return {__ktest_start, static_cast<std::size_t>(__ktest_end - __ktest_start)};
}

bool matches(const Case& c, std::string_view filter) {
    if (filter.empty()) return true;
    char name[256];
    base::BufferSink sink(name);
    base::format_to(sink, "{}.{}", c.suite, c.name);
    VERIFY(!sink.truncated()); // a 256-character test name is a bug in the test
    std::string_view full = sink.view();
    // Several patterns may be given, separated by commas.
    while (!filter.empty()) {
        std::string_view pattern = base::next_token(filter, ',');
        if (!pattern.empty() && base::glob_match(pattern, full)) return true;
    }
    return false;
}

bool same(const char* a, const char* b) { return std::string_view(a) == std::string_view(b); }

// Source order (file, then line): the section holds cases in whatever order
// the compiler emitted them, which for GCC is reversed within a file.
bool before(const Case& a, const Case& b) {
    std::string_view fa(a.file), fb(b.file);
    return fa != fb ? fa < fb : a.line < b.line;
}

// Suites in order of first appearance; a suite's cases may be spread over
// several files and are gathered here.
bool is_first_of_suite(std::span<const Case> cases, std::size_t i) {
    for (std::size_t k = 0; k < i; ++k)
        if (same(cases[k].suite, cases[i].suite)) return false;
    return true;
}

class ConsoleSink final : public base::Sink {
public:
    void write(std::string_view text) override { klog::print("{}", text); }
};

} // namespace

void Context::fail(const char* file, int line, std::string_view what) {
    ++m_failures;
    detail::report(file, line, what, nullptr, nullptr);
}

void Context::skip(std::string_view reason) {
    m_skipped = true;
    m_skip_reason = reason;
}

namespace detail {

void print_value(base::Sink& sink, const char* label, std::span<const base::FormatArg> value) {
    base::format_to(sink, "        # {:>5}: ", label);
    if (value.empty())
        sink.write("(not printable)");
    else
        base::vformat(sink, "{}", value);
    sink.write("\n");
}

void report(const char* file, int line, std::string_view what, void (*details)(base::Sink&, const void*),
            const void* ctx) {
    klog::print("        # {}:{}: {}\n", file, line, what);
    if (details) {
        ConsoleSink sink;
        details(sink, ctx);
    }
}

} // namespace detail

namespace {

// Calls f(suite_index, suite, count) at the start of each suite that has
// matching cases, then f_case(index, case) for each of them in source order.
template <typename OnSuite, typename OnCase, typename OnSuiteEnd>
void for_each_selected(std::string_view filter, OnSuite on_suite, OnCase on_case, OnSuiteEnd on_suite_end) {
    auto cases = all_cases();
    unsigned suite_index = 0;
    for (std::size_t i = 0; i < cases.size(); ++i) {
        if (!is_first_of_suite(cases, i)) continue;
        const char* suite = cases[i].suite;
        unsigned count = 0;
        for (std::size_t k = i; k < cases.size(); ++k)
            count += same(cases[k].suite, suite) && matches(cases[k], filter);
        if (count == 0) continue;
        on_suite(++suite_index, suite, count);
        const Case* previous = nullptr;
        for (unsigned n = 0; n < count; ++n) {
            // Next case of this suite in source order (selection: O(n^2),
            // fine for hundreds of cases, and needs no memory).
            const Case* next = nullptr;
            for (std::size_t k = i; k < cases.size(); ++k) {
                const Case& c = cases[k];
                if (!same(c.suite, suite) || !matches(c, filter)) continue;
                if (previous && !before(*previous, c)) continue;
                if (!next || before(c, *next)) next = &c;
            }
            previous = next;
            if (!on_case(n + 1, *next)) { // stop: still close the suite in KTAP
                on_suite_end(suite_index, suite);
                return;
            }
        }
        on_suite_end(suite_index, suite);
    }
}

unsigned count_suites(std::string_view filter) {
    unsigned suites = 0;
    for_each_selected(filter, [&](unsigned, const char*, unsigned) { ++suites; },
                      [](unsigned, const Case&) { return true; }, [](unsigned, const char*) {});
    return suites;
}

} // namespace

Summary run(std::string_view filter) {
    Summary summary;
    klog::print("KTAP version 1\n1..{}\n", count_suites(filter));
    bool suite_failed = false;
    bool stop = false;
    for_each_selected(
        filter,
        [&](unsigned, const char* suite, unsigned count) {
            suite_failed = false;
            klog::print("    KTAP version 1\n    # Subtest: {}\n    1..{}\n", suite, count);
        },
        [&](unsigned index, const Case& c) {
            Context context;
            c.run(context);
            if (context.failed()) {
                klog::print("    not ok {} {}\n", index, c.name);
                ++summary.failed;
                suite_failed = true;
#if CONFIG_KTEST_FAIL_FAST
                stop = true;
                return false;
#endif
            } else if (context.skipped()) {
                klog::print("    ok {} {} # SKIP {}\n", index, c.name, context.skip_reason());
                ++summary.skipped;
            } else {
                klog::print("    ok {} {}\n", index, c.name);
                ++summary.passed;
            }
            return true;
        },
        [&](unsigned suite_index, const char* suite) {
            klog::print("{} {} {}\n", suite_failed ? "not ok" : "ok", suite_index, suite);
        });
    if (stop) klog::print("# ktest: stopped at the first failure (KTEST_FAIL_FAST)\n");
    klog::print("# ktest: {} passed, {} failed, {} skipped\n", summary.passed, summary.failed, summary.skipped);
    return summary;
}

void list() {
    for_each_selected(
        "", [](unsigned, const char*, unsigned) {},
        [](unsigned, const Case& c) {
            klog::print("ktest-case {}.{}\n", c.suite, c.name);
            return true;
        },
        [](unsigned, const char*) {});
    klog::print("ktest-list-end\n");
}

int main_from_boot_options() {
    if (plat::has_boot_option("ktest.list")) {
        list();
        return 0;
    }
    Summary s = run(plat::boot_option("ktest.filter"));
    return s.failed == 0 ? 0 : 1;
}

} // namespace tessera::ktest
