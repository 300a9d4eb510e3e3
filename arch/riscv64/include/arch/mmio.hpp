#pragma once
// Device register access. Only arch/ and plat/ use these; everyone else goes
// through a driver's typed interface.
#include <cstdint>

namespace tessera::arch {

template <typename T>
class Mmio {
public:
    explicit constexpr Mmio(std::uintptr_t address) : m_address(address) {}
    T read() const { return *reinterpret_cast<volatile const T*>(m_address); }
    void write(T v) const { *reinterpret_cast<volatile T*>(m_address) = v; }
    [[nodiscard]] std::uintptr_t address() const { return m_address; }

private:
    std::uintptr_t m_address;
};

} // namespace tessera::arch
