#pragma once
// The one allocator interface. Page, pool and arena allocators all satisfy
// it, so code that needs memory says which *kind* it wants by type, and
// tests can run the same patterns against each.
#include <base/result.hpp>
#include <concepts>
#include <cstddef>

namespace tessera::base {

template <typename A>
concept Allocator = requires(A& a, std::size_t size, std::size_t align, void* p) {
    // `align` is a power of two; the result is aligned to it or an error
    // (NoMemory when exhausted, InvalidArgument for an impossible request).
    { a.allocate(size, align) } -> std::same_as<Result<void*>>;
    // `size` is what was asked for; allocators that track it may VERIFY it.
    { a.deallocate(p, size) } -> std::same_as<void>;
};

constexpr bool is_power_of_two(std::size_t v) { return v != 0 && (v & (v - 1)) == 0; }
constexpr std::size_t align_up(std::size_t v, std::size_t align) { return (v + align - 1) & ~(align - 1); }

} // namespace tessera::base
