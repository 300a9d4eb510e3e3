#pragma once
// From a member back to the object that contains it, given the member as a
// pointer to member: container_of<&Thread::timer>(event). For objects that
// embed a hook (list node, timer event) and get the hook back in a callback.
#include <cstddef>

namespace tessera::base {

template <typename T, typename M>
std::size_t member_offset(M T::*member) {
    // Measured on suitably aligned storage that is never read (the classic
    // null-pointer form is undefined behaviour, and under -fsanitize=null
    // GCC does compile it differently).
    alignas(T) static constexpr unsigned char storage[sizeof(T)] = {};
    const T* probe = reinterpret_cast<const T*>(storage);
    return static_cast<std::size_t>(reinterpret_cast<const char*>(&(probe->*member)) -
                                    reinterpret_cast<const char*>(probe));
}

template <typename T, typename M>
T& container_of(M& member_ref, M T::*member) {
    return *reinterpret_cast<T*>(reinterpret_cast<char*>(&member_ref) - member_offset(member));
}

} // namespace tessera::base
