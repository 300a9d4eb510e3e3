#include <arch/hart.hpp>
#include <atomic>
#include <mm-arena/arena.hpp>
#include <mm-buddy/buddy.hpp>

namespace tessera::mm_arena {

namespace {
constinit std::atomic<std::uint64_t> g_reserved{0}, g_peak{0}, g_largest{0}, g_releases{0};

void raise_to(std::atomic<std::uint64_t>& max, std::uint64_t value) {
    std::uint64_t seen = max.load(std::memory_order_relaxed);
    while (value > seen && !max.compare_exchange_weak(seen, value, std::memory_order_relaxed)) {}
}
} // namespace

struct Arena::Chunk {
    Chunk* previous;
    std::size_t bytes;
};

base::Result<void> Arena::add_chunk(std::size_t at_least) {
    std::size_t want = sizeof(Chunk) + at_least;
    unsigned order = mm_buddy::order_for(want);
    if (order < CONFIG_MM_ARENA_CHUNK_ORDER) order = CONFIG_MM_ARENA_CHUNK_ORDER;
    if (order > mm_buddy::kMaxOrder) return base::Error::InvalidArgument;
    auto* chunk = static_cast<Chunk*>(TRY(mm_buddy::alloc_pages(order)));
    chunk->previous = m_chunk;
    chunk->bytes = mm_buddy::kPageSize << order;
    m_chunk = chunk;
    m_cursor = reinterpret_cast<std::uintptr_t>(chunk + 1);
    m_limit = reinterpret_cast<std::uintptr_t>(chunk) + chunk->bytes;
    m_reserved += chunk->bytes;
    ++m_chunks;
    raise_to(g_peak, g_reserved.fetch_add(chunk->bytes, std::memory_order_relaxed) + chunk->bytes);
    return {};
}

base::Result<void*> Arena::allocate(std::size_t size, std::size_t align) {
    VERIFY(!arch::in_interrupt()); // no allocation in interrupt context
    if (!base::is_power_of_two(align) || align > mm_buddy::kPageSize) return base::Error::InvalidArgument;
    if (size > (mm_buddy::kPageSize << mm_buddy::kMaxOrder)) return base::Error::InvalidArgument;
    std::uintptr_t at = (m_cursor + align - 1) & ~(align - 1);
    if (!m_chunk || at + size > m_limit || at < m_cursor) {
        TRY(add_chunk(size + align));
        at = (m_cursor + align - 1) & ~(align - 1);
    }
    m_cursor = at + size;
    m_used += size;
    if (m_used > m_high_water) {
        m_high_water = m_used;
        raise_to(g_largest, m_high_water);
    }
    return reinterpret_cast<void*>(at);
}

void Arena::release() {
    while (m_chunk) {
        Chunk* previous = m_chunk->previous;
        g_reserved.fetch_sub(m_chunk->bytes, std::memory_order_relaxed);
        mm_buddy::free_pages(m_chunk);
        m_chunk = previous;
    }
    if (m_chunks) g_releases.fetch_add(1, std::memory_order_relaxed);
    m_cursor = m_limit = 0;
    m_used = m_reserved = 0;
    m_chunks = 0;
}

Stats stats() {
    return {g_reserved.load(std::memory_order_relaxed), g_peak.load(std::memory_order_relaxed),
            g_largest.load(std::memory_order_relaxed), g_releases.load(std::memory_order_relaxed)};
}

} // namespace tessera::mm_arena
