#include <base/error.hpp>

namespace tessera::base {

std::string_view error_name(Error e) {
    switch (e) {
    case Error::NoMemory: return "out of memory";
    case Error::InvalidArgument: return "invalid argument";
    case Error::NotFound: return "not found";
    case Error::Exists: return "already exists";
    case Error::Busy: return "busy";
    case Error::WouldBlock: return "would block";
    case Error::TimedOut: return "timed out";
    case Error::Malformed: return "malformed input";
    case Error::OutOfRange: return "out of range";
    case Error::Overflow: return "overflow";
    case Error::NotSupported: return "not supported";
    case Error::IoError: return "I/O error";
    case Error::Unavailable: return "unavailable";
    case Error::Overloaded: return "overloaded";
    case Error::Again: return "value changed, try again";
    case Error::OwnerDied: return "owner died";
    case Error::PermissionDenied: return "permission denied";
    case Error::Unreachable: return "unreachable";
    case Error::MessageTooLong: return "message too long";
    case Error::AddressInUse: return "address in use";
    case Error::ConnectionRefused: return "connection refused";
    case Error::ConnectionReset: return "connection reset";
    case Error::NotConnected: return "not connected";
    }
    return "unknown error";
}

} // namespace tessera::base
