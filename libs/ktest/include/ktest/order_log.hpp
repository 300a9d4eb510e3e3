#pragma once
// The order in which threads did something, as a string a test compares
// with the expected one (EXPECT_EQ(log.view(), "abcd")). add() is safe from
// any hart (an atomic slot index); read view() once the writers are done.
// Entries past the capacity are counted but not kept.
#include <atomic>
#include <cstdint>
#include <string_view>

namespace tessera::ktest {

template <unsigned Capacity = 16>
struct OrderLog {
    char order[Capacity] = {};
    std::atomic<unsigned> n{0};
    void add(char c) {
        unsigned i = n.fetch_add(1);
        if (i < Capacity) order[i] = c;
    }
    std::string_view view() const { return {order, n.load() < Capacity ? n.load() : Capacity}; }
    // Which of 'a'..'z' were logged, as bits (a = 1), for checks of who
    // acted where the order between them is the scheduler's to choose.
    std::uint32_t letters() const {
        std::uint32_t seen = 0;
        for (char c : view())
            if (c >= 'a' && c <= 'z') seen |= 1u << (c - 'a');
        return seen;
    }
};

} // namespace tessera::ktest
