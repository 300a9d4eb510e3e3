// Buddy allocator. Each RAM region is a zone whose page indices count from
// a base aligned to the largest block, so the buddy of block i of order k is
// simply i ^ 2^k. Free blocks are linked through their own first bytes (no
// side allocation); one state byte per page records which pages start a
// free or an allocated block and of what order. Boot cost is one memset of
// the state array plus one list insertion per initial block: no loop ever
// touches every page.
#include <arch/hart.hpp>
#include <arch/spinlock.hpp>
#include <atomic>
#include <base/verify.hpp>
#include <cstring>
#include <klog/klog.hpp>
#include <mm-buddy/buddy.hpp>
#include <plat/machine.hpp>

extern "C" char __image_start[], __image_end[];

namespace tessera::mm_buddy {

namespace {

using base::Error;
using base::Result;

// State byte of a page: the start of a free block, the start of an
// allocated block, or neither (inside a block, reserved, or not RAM).
constexpr std::uint8_t kFreeHead = 0x80;
constexpr std::uint8_t kUsedHead = 0x40;
constexpr std::uint8_t kOrderMask = 0x1f;
static_assert(kMaxOrder <= kOrderMask);

struct FreeBlock {
    FreeBlock* prev;
    FreeBlock* next;
};

struct Zone {
    // Lock order (base/lock_order.hpp): inside pool locks, outside klog's.
    arch::Spinlock lock;
    std::uintptr_t base = 0;  // aligned to the largest block
    std::size_t pages = 0;    // indices 0..pages-1 have a state byte
    std::uint8_t* state = nullptr;
    FreeBlock* free_list[kMaxOrder + 1] = {};
    std::uint64_t free_blocks[kMaxOrder + 1] = {};
    std::uint64_t free_pages = 0;
    std::uint64_t managed_pages = 0;
    std::uint64_t allocations = 0; // counters live under the zone lock
    std::uint64_t frees = 0;

    bool contains(std::uintptr_t a) const { return a >= base && a < base + pages * kPageSize; }
    std::size_t index_of(const void* p) const { return (reinterpret_cast<std::uintptr_t>(p) - base) / kPageSize; }
    FreeBlock* block_at(std::size_t index) const { return reinterpret_cast<FreeBlock*>(base + index * kPageSize); }

    void push(unsigned order, std::size_t index) {
        FreeBlock* b = block_at(index);
        b->prev = nullptr;
        b->next = free_list[order];
        if (b->next) b->next->prev = b;
        free_list[order] = b;
        state[index] = kFreeHead | order;
        ++free_blocks[order];
        free_pages += std::size_t(1) << order;
    }

    void unlink(unsigned order, std::size_t index) {
        FreeBlock* b = block_at(index);
        if (b->prev) b->prev->next = b->next; else free_list[order] = b->next;
        if (b->next) b->next->prev = b->prev;
        state[index] = 0;
        --free_blocks[order];
        free_pages -= std::size_t(1) << order;
    }
};

constexpr unsigned kMaxZones = 4;
constinit Zone g_zones[kMaxZones];
constinit unsigned g_zone_count = 0;
constinit std::atomic<std::uint64_t> g_failures{0};
constinit std::uint64_t g_metadata_bytes = 0; // written once at init

constexpr std::uintptr_t kBlockBytes = kPageSize << kMaxOrder;

struct Range {
    std::uintptr_t begin, end;
};

std::uintptr_t page_up(std::uintptr_t a) { return (a + kPageSize - 1) & ~(kPageSize - 1); }
std::uintptr_t page_down(std::uintptr_t a) { return a & ~(kPageSize - 1); }

// Usable parts of [begin, end) once `holes` are cut out; sorted, disjoint.
unsigned usable_ranges(Range region, const Range* holes, unsigned hole_count, Range* out, unsigned max_out) {
    unsigned n = 0;
    std::uintptr_t cursor = region.begin;
    while (cursor < region.end && n < max_out) {
        // The hole that starts first at or after... or covers cursor.
        std::uintptr_t next_hole = region.end, hole_end = region.end;
        for (unsigned h = 0; h < hole_count; ++h) {
            if (holes[h].end <= cursor || holes[h].begin >= region.end) continue;
            std::uintptr_t b = holes[h].begin > cursor ? holes[h].begin : cursor;
            if (b < next_hole || (b == next_hole && holes[h].end > hole_end)) {
                next_hole = b;
                hole_end = holes[h].end;
            }
        }
        std::uintptr_t a = page_up(cursor), z = page_down(next_hole);
        if (a < z) out[n++] = {a, z};
        cursor = next_hole == region.end ? region.end : hole_end;
    }
    return n;
}

// Carves the largest naturally aligned blocks out of [begin, end).
void seed(Zone& zone, Range r) {
    std::size_t index = zone.index_of(reinterpret_cast<void*>(r.begin));
    std::size_t last = zone.index_of(reinterpret_cast<void*>(r.end));
    while (index < last) {
        unsigned order = kMaxOrder;
        while (order > 0 && ((index & ((std::size_t(1) << order) - 1)) || index + (std::size_t(1) << order) > last))
            --order;
        zone.push(order, index);
        zone.managed_pages += std::size_t(1) << order;
        index += std::size_t(1) << order;
    }
}

Result<void> init_zone(Range region, const Range* holes, unsigned hole_count) {
    if (g_zone_count == kMaxZones) {
        klog::warn("mm-buddy: more than {} memory regions; ignoring {:#x}-{:#x}", kMaxZones, region.begin, region.end);
        return {};
    }
    Range usable[16];
    unsigned count = usable_ranges(region, holes, hole_count, usable, 16);
    if (count == 0) return {};

    Zone& zone = g_zones[g_zone_count];
    zone.base = region.begin & ~(kBlockBytes - 1);
    zone.pages = (page_up(region.end) - zone.base) / kPageSize;
    // The state array comes out of the first usable range that can hold it.
    std::size_t bytes = page_up(zone.pages);
    unsigned host = count;
    for (unsigned i = 0; i < count; ++i)
        if (usable[i].end - usable[i].begin >= bytes + kPageSize) { host = i; break; }
    if (host == count) return Error::NoMemory;
    zone.state = reinterpret_cast<std::uint8_t*>(usable[host].begin);
    usable[host].begin += bytes;
    memset(zone.state, 0, zone.pages);
    g_metadata_bytes += bytes;

    for (unsigned i = 0; i < count; ++i) seed(zone, usable[i]);
    ++g_zone_count;
    return {};
}

Zone* zone_of(const void* p) {
    auto a = reinterpret_cast<std::uintptr_t>(p);
    for (unsigned z = 0; z < g_zone_count; ++z)
        if (g_zones[z].contains(a)) return &g_zones[z];
    return nullptr;
}

} // namespace

Result<void> init_memory() {
    const plat::MachineInfo& m = plat::machine();
    // Everything below the end of the image (firmware, kernel, boot stack)
    // plus the device tree and the ranges the firmware reserved.
    Range holes[2 + sizeof(m.reserved) / sizeof(m.reserved[0])];
    unsigned hole_count = 0;
    auto image_end = reinterpret_cast<std::uintptr_t>(__image_end);
    holes[hole_count++] = {0, image_end};
    auto dtb = reinterpret_cast<std::uintptr_t>(m.dtb);
    holes[hole_count++] = {page_down(dtb), page_up(dtb + m.dtb_size)};
    for (unsigned i = 0; i < m.reserved_count; ++i)
        holes[hole_count++] = {page_down(m.reserved[i].base), page_up(m.reserved[i].base + m.reserved[i].size)};
    for (unsigned r = 0; r < m.memory_count; ++r)
        TRY(init_zone({m.memory[r].base, m.memory[r].base + m.memory[r].size}, holes, hole_count));
    if (g_zone_count == 0) return Error::NoMemory;
    Stats s = stats();
    klog::info("mm-buddy: {} MiB free in {} zone(s), {} KiB of page state", s.free_pages * kPageSize >> 20,
               g_zone_count, s.metadata_bytes >> 10);
    return {};
}

Result<void*> alloc_pages(unsigned order) {
    VERIFY(!arch::in_interrupt()); // no allocation in interrupt context
    if (order > kMaxOrder) return Error::InvalidArgument;
    for (unsigned z = 0; z < g_zone_count; ++z) {
        Zone& zone = g_zones[z];
        arch::SpinlockGuard guard(zone.lock);
        unsigned k = order;
        while (k <= kMaxOrder && !zone.free_list[k]) ++k;
        if (k > kMaxOrder) continue;
        std::size_t index = zone.index_of(zone.free_list[k]);
        zone.unlink(k, index);
        while (k > order) { // split, keeping the lower half
            --k;
            zone.push(k, index + (std::size_t(1) << k));
        }
        zone.state[index] = kUsedHead | order;
        ++zone.allocations;
        return static_cast<void*>(zone.block_at(index));
    }
    g_failures.fetch_add(1, std::memory_order_relaxed);
    return Error::NoMemory;
}

Result<void*> alloc_contiguous(std::size_t pages) {
    if (pages == 0) return Error::InvalidArgument;
    unsigned order = 0;
    while ((std::size_t(1) << order) < pages) {
        if (++order > kMaxOrder) return Error::InvalidArgument;
    }
    return alloc_pages(order);
}

void free_pages(void* block) {
    Zone* zone = zone_of(block);
    if (!zone || reinterpret_cast<std::uintptr_t>(block) % kPageSize) {
        klog::error("mm-buddy: free_pages({}): not a page this allocator manages", block);
        PANIC("mm-buddy: free of a foreign pointer");
    }
    arch::SpinlockGuard guard(zone->lock);
    std::size_t index = zone->index_of(block);
    std::uint8_t st = zone->state[index];
    if (st & kFreeHead) {
        klog::error("mm-buddy: free_pages({}): block of order {} is already free", block, st & kOrderMask);
        PANIC("mm-buddy: double free");
    }
    if (!(st & kUsedHead)) {
        klog::error("mm-buddy: free_pages({}): not the start of an allocated block", block);
        PANIC("mm-buddy: free of a foreign pointer");
    }
    unsigned order = st & kOrderMask;
    zone->state[index] = 0;
    while (order < kMaxOrder) { // merge with free buddies, upwards
        std::size_t buddy = index ^ (std::size_t(1) << order);
        if (buddy >= zone->pages || zone->state[buddy] != (kFreeHead | order)) break;
        zone->unlink(order, buddy);
        index &= ~(std::size_t(1) << order);
        ++order;
    }
    zone->push(order, index);
    ++zone->frees;
}

Stats stats() {
    Stats s = {};
    for (unsigned z = 0; z < g_zone_count; ++z) {
        Zone& zone = g_zones[z];
        arch::SpinlockGuard guard(zone.lock);
        s.total_pages += zone.managed_pages;
        s.free_pages += zone.free_pages;
        for (unsigned k = 0; k <= kMaxOrder; ++k) s.free_blocks[k] += zone.free_blocks[k];
        s.allocations += zone.allocations;
        s.frees += zone.frees;
    }
    s.failures = g_failures.load(std::memory_order_relaxed);
    s.metadata_bytes = g_metadata_bytes;
    return s;
}

Result<void*> PageAllocator::allocate(std::size_t size, std::size_t align) {
    if (!base::is_power_of_two(align)) return Error::InvalidArgument;
    std::size_t need = size > align ? size : align; // blocks are aligned to their size
    if (need > (kPageSize << kMaxOrder)) return Error::InvalidArgument;
    return alloc_pages(order_for(need));
}

void PageAllocator::deallocate(void* p, std::size_t) { free_pages(p); }

} // namespace tessera::mm_buddy
