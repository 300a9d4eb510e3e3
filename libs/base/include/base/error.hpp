#pragma once
// The kernel-wide error vocabulary. Errors are values: a function that can
// fail returns Result<T> (see result.hpp) carrying one of these.
#include <cstdint>
#include <string_view>

namespace tessera::base {

enum class Error : std::uint8_t {
    NoMemory,        // an allocator or a fixed pool is exhausted
    InvalidArgument, // the caller passed something the API does not accept
    NotFound,
    Exists,
    Busy,
    WouldBlock,      // non-blocking form of an operation that would wait
    TimedOut,
    Malformed,       // input from outside (packet, device tree, image) is corrupt
    OutOfRange,
    Overflow,
    NotSupported,
    IoError,
    Unavailable,     // the device or service is not present on this machine
    Overloaded,      // admission refused: a capacity or utilisation bound would be exceeded
    Again,           // the state changed under the caller (a futex word no longer holds the expected value): re-read, retry
    OwnerDied,       // a lock's owner exited holding it; the caller now owns it and must repair what it guards
    PermissionDenied, // the caller may not do this (e.g. release a lock it does not own)
    Unreachable,     // no route to the destination (network), or the peer said so (ICMP unreachable)
    MessageTooLong,  // a datagram exceeds what the path carries (IPv4 DF beyond the MTU, UDP > 65507)
    AddressInUse,    // a port or address is already bound
    ConnectionRefused, // the peer answered a connection attempt with a reset (or ICMP port unreachable)
    ConnectionReset,   // the peer reset an established connection
    NotConnected,      // the connection is not (or no longer) in a state for this operation
};

[[nodiscard]] std::string_view error_name(Error e);

} // namespace tessera::base
