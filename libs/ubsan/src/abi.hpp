#pragma once
// The data GCC's -fsanitize=undefined checks pass to the __ubsan_handle_*
// functions. GCC (gcc/ubsan.cc) emits the layouts of LLVM compiler-rt's
// lib/ubsan/ubsan_handlers.h and ubsan_value.h, which are the de-facto
// ABI; the sizes below were checked against GCC 12's output for RV64.
//
// The descriptors live in writable data (.data.rel.local), one per check
// site. The runtime claims a site by swapping its column for kColumnReported
// (compiler-rt does the same), which is how "report once per site" works
// without a table or a lock.
#include <cstddef>
#include <cstdint>

namespace tessera::ubsan::abi {

// An operand: the value itself when it fits in a pointer-sized word (sign-
// or zero-extended), else the address of the value (__int128).
using ValueHandle = std::uintptr_t;

struct SourceLocation {
    const char* file;
    std::uint32_t line;
    std::uint32_t column;
};
static_assert(sizeof(SourceLocation) == 16);

inline constexpr std::uint32_t kColumnReported = ~0u;

enum class TypeKind : std::uint16_t { Integer = 0, Float = 1, Unknown = 0xffff };

struct TypeDescriptor {
    TypeKind kind;
    // Integer: bit 0 = signed, bits 1.. = log2(bit width). Float: bit width.
    std::uint16_t info;
    // Followed by the NUL-terminated type name, quotes included: 'int'.
    [[nodiscard]] const char* name() const { return reinterpret_cast<const char*>(this) + sizeof(*this); }

    [[nodiscard]] bool is_integer() const { return kind == TypeKind::Integer; }
    [[nodiscard]] bool is_signed_integer() const { return is_integer() && (info & 1); }
    [[nodiscard]] unsigned integer_bits() const { return 1u << (info >> 1); }
    [[nodiscard]] bool is_float() const { return kind == TypeKind::Float; }
    [[nodiscard]] unsigned float_bits() const { return info; }
};
static_assert(sizeof(TypeDescriptor) == 4);

// What a type-mismatch check was doing (compiler-rt's TypeCheckKind).
enum class TypeCheckKind : std::uint8_t {
    Load, Store, ReferenceBinding, MemberAccess, MemberCall, ConstructorCall,
    DowncastPointer, DowncastReference, Upcast, UpcastToVirtualBase, NonnullAssign,
    DynamicOperation,
};

struct TypeMismatchData { // __ubsan_handle_type_mismatch_v1
    SourceLocation loc;
    const TypeDescriptor* type;
    std::uint8_t log_alignment;
    TypeCheckKind check_kind;
};
static_assert(sizeof(TypeMismatchData) == 32);

struct OverflowData { // add, sub, mul, negate, divrem
    SourceLocation loc;
    const TypeDescriptor* type;
};
static_assert(sizeof(OverflowData) == 24);

struct ShiftOutOfBoundsData {
    SourceLocation loc;
    const TypeDescriptor* lhs_type;
    const TypeDescriptor* rhs_type;
};
static_assert(sizeof(ShiftOutOfBoundsData) == 32);

struct OutOfBoundsData {
    SourceLocation loc;
    const TypeDescriptor* array_type;
    const TypeDescriptor* index_type;
};
static_assert(sizeof(OutOfBoundsData) == 32);

struct UnreachableData { // builtin_unreachable, missing_return
    SourceLocation loc;
};

struct VlaBoundData {
    SourceLocation loc;
    const TypeDescriptor* type;
};

struct InvalidValueData { // load_invalid_value (bool, enum)
    SourceLocation loc;
    const TypeDescriptor* type;
};

struct NonNullArgData {
    SourceLocation loc;
    SourceLocation attr_loc; // the nonnull attribute (file is null if unknown)
    int arg_index;           // 1-based
};
static_assert(sizeof(NonNullArgData) == 40);

struct NonNullReturnData { // the return statement's location is a separate argument
    SourceLocation attr_loc;
};

struct PointerOverflowData {
    SourceLocation loc;
};

enum class BuiltinCheckKind : std::uint8_t { CtzPassedZero = 0, ClzPassedZero = 1 };

struct InvalidBuiltinData {
    SourceLocation loc;
    BuiltinCheckKind kind;
};

struct FloatCastOverflowData { // only with -fsanitize=float-cast-overflow
    SourceLocation loc;
    const TypeDescriptor* from;
    const TypeDescriptor* to;
};

} // namespace tessera::ubsan::abi
