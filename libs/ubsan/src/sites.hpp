#pragma once
// Which source locations have already reported (report mode).
//
// Claiming the check's own descriptor is not enough: GCC expands some
// checks (overflow) after inlining and loop unrolling, so one source
// location can own several descriptors, one per copy of the code. Hence
// this set of reported file:line:column keys.
#include "abi.hpp"
#include <atomic>
#include <cstddef>
#include <cstdint>

namespace tessera::ubsan::detail {

// A location as a non-zero 64-bit key: FNV-1a over the file name (each
// translation unit has its own copy of the string, so the pointer would
// not do), then line and column, then a final avalanche so that the low
// bits index the table well. Distinct locations collide with probability
// about 2^-64 per pair.
inline std::uint64_t site_key(const char* file, std::uint32_t line, std::uint32_t column) {
    constexpr std::uint64_t kPrime = 0x100000001b3ull;
    std::uint64_t h = 0xcbf29ce484222325ull;
    for (const char* p = file; p && *p; ++p) h = (h ^ static_cast<unsigned char>(*p)) * kPrime;
    h = (h ^ (std::uint64_t(line) << 32 | column)) * kPrime;
    h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ull;
    h = (h ^ (h >> 27)) * 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h != 0 ? h : 1;
}

// A fixed open-addressing set of keys. Lock-free and SMP/IRQ-safe: a slot
// goes from 0 to a key once, by compare-and-swap, and never changes again,
// so a probe sequence never has holes and no reader needs a lock.
template <std::size_t N>
class SiteSet {
public:
    enum class Insert { New, Present, Full };

    Insert insert(std::uint64_t key) {
        std::size_t start = key % N;
        for (std::size_t i = 0; i < N; ++i) {
            std::atomic<std::uint64_t>& slot = m_slots[(start + i) % N];
            std::uint64_t seen = slot.load(std::memory_order_relaxed);
            if (seen == 0) {
                if (slot.compare_exchange_strong(seen, key, std::memory_order_relaxed)) return Insert::New;
                // Lost the slot to another hart; `seen` is now its key.
            }
            if (seen == key) return Insert::Present;
        }
        return Insert::Full;
    }

private:
    std::atomic<std::uint64_t> m_slots[N] = {};
};

} // namespace tessera::ubsan::detail
