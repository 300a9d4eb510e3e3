#pragma once
// Byte buffers: read-only and writable views are distinct types so that an
// API says in its signature whether it may write.
#include <cstddef>
#include <span>

namespace tessera::base {

using ReadBuffer = std::span<const std::byte>;
using WriteBuffer = std::span<std::byte>;

inline ReadBuffer as_read(WriteBuffer b) { return {b.data(), b.size()}; }

} // namespace tessera::base
