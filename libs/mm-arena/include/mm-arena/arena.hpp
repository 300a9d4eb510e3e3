#pragma once
// Request-scoped memory: allocate() bumps a pointer through chunks of buddy
// pages, deallocate() does nothing, release() returns every chunk at once.
// Ideal for work with a clear end (a request, a parse): no per-object
// bookkeeping, no fragmentation, one call to clean up.
//
// Not synchronized: an arena belongs to one owner (one connection, one
// thread). The global statistics are atomic. Allocation is refused in
// interrupt context (VERIFY).
#include <base/allocator.hpp>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tessera::mm_arena {

class Arena {
public:
    explicit constexpr Arena(std::string_view name) : m_name(name) {}
    Arena(const Arena&) = delete;
    Arena& operator=(const Arena&) = delete;
    ~Arena() { release(); }

    // `align` is a power of two up to the page size.
    [[nodiscard]] base::Result<void*> allocate(std::size_t size, std::size_t align = 16);
    void deallocate(void*, std::size_t) {} // memory comes back in release()
    // Returns every chunk to the page allocator. Pointers from this arena
    // are dead afterwards; the arena itself can be used again.
    void release();

    [[nodiscard]] std::size_t bytes_used() const { return m_used; }       // asked for, since release
    [[nodiscard]] std::size_t bytes_reserved() const { return m_reserved; } // in chunks
    [[nodiscard]] std::size_t high_water() const { return m_high_water; }  // most bytes used at once
    [[nodiscard]] unsigned chunks() const { return m_chunks; }
    [[nodiscard]] std::string_view name() const { return m_name; }

private:
    struct Chunk;
    base::Result<void> add_chunk(std::size_t at_least);

    std::string_view m_name;
    Chunk* m_chunk = nullptr; // current (newest) chunk; older ones chained
    std::uintptr_t m_cursor = 0, m_limit = 0;
    std::size_t m_used = 0, m_reserved = 0, m_high_water = 0;
    unsigned m_chunks = 0;
};
static_assert(base::Allocator<Arena>);

struct Stats {
    std::uint64_t bytes_reserved; // in all arenas' chunks right now
    std::uint64_t peak_reserved;  // the most ever at once
    std::uint64_t largest_arena;  // high-water mark of the biggest arena
    std::uint64_t releases;
};
Stats stats();

} // namespace tessera::mm_arena
