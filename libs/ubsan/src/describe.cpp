#include "describe.hpp"

namespace tessera::ubsan::detail {

namespace {

using U128 = unsigned __int128;

// An integer operand widened to 128 bits, with its sign.
struct Integer {
    bool negative;
    U128 magnitude;
};

Integer decode_integer(const abi::TypeDescriptor& type, ValueHandle value) {
    unsigned bits = type.integer_bits();
    U128 raw;
    if (bits <= 64) {
        raw = value;
        if (bits < 64) raw &= (U128(1) << bits) - 1;
    } else {
        // Wider than a ValueHandle: the check passed the value's address.
        const auto* words = reinterpret_cast<const std::uint64_t*>(value);
        raw = U128(words[0]) | (U128(words[1]) << 64);
        bits = 128;
    }
    bool negative = type.is_signed_integer() && ((raw >> (bits - 1)) & 1);
    if (!negative) return {false, raw};
    // Two's complement magnitude within `bits`; correct for the minimum too.
    U128 mask = bits == 128 ? ~U128(0) : (U128(1) << bits) - 1;
    return {true, (~raw + 1) & mask};
}

void write_integer(Sink& sink, Integer v) {
    char digits[40]; // 2^128 has 39 decimal digits
    std::size_t at = sizeof(digits);
    U128 m = v.magnitude;
    do {
        digits[--at] = static_cast<char>('0' + static_cast<unsigned>(m % 10));
        m /= 10;
    } while (m != 0);
    if (v.negative) sink.write("-");
    sink.write({digits + at, sizeof(digits) - at});
}

bool is_negative(const abi::TypeDescriptor& type, ValueHandle value) {
    return type.is_integer() && decode_integer(type, value).negative;
}

bool is_zero(const abi::TypeDescriptor& type, ValueHandle value) {
    return type.is_integer() && decode_integer(type, value).magnitude == 0;
}

// What a type-mismatch check was doing, as compiler-rt words it.
const char* check_kind_text(abi::TypeCheckKind kind) {
    using K = abi::TypeCheckKind;
    switch (kind) {
    case K::Load: return "load of";
    case K::Store: return "store to";
    case K::ReferenceBinding: return "reference binding to";
    case K::MemberAccess: return "member access within";
    case K::MemberCall: return "member call on";
    case K::ConstructorCall: return "constructor call on";
    case K::DowncastPointer:
    case K::DowncastReference: return "downcast of";
    case K::Upcast: return "upcast of";
    case K::UpcastToVirtualBase: return "cast to virtual base of";
    case K::NonnullAssign: return "_Nonnull binding to";
    case K::DynamicOperation: return "dynamic operation on";
    }
    return "access to";
}

} // namespace

void write_value(Sink& sink, const abi::TypeDescriptor& type, ValueHandle value) {
    if (type.is_integer()) {
        write_integer(sink, decode_integer(type, value));
    } else if (type.is_float() && type.float_bits() <= 64) {
        base::format_to(sink, "<{}-bit floating-point value, bits {:#x}>", type.float_bits(),
                        static_cast<unsigned long long>(value));
    } else {
        base::format_to(sink, "<value of type {}>", type.name());
    }
}

const char* describe_type_mismatch(Sink& sink, const abi::TypeMismatchData& data, ValueHandle pointer) {
    const char* what = check_kind_text(data.check_kind);
    std::uint64_t alignment = std::uint64_t(1) << data.log_alignment;
    if (pointer == 0) {
        base::format_to(sink, "{} null pointer of type {}", what, data.type->name());
        return "UBSan: null pointer use";
    }
    if (pointer & (alignment - 1)) {
        base::format_to(sink, "{} misaligned address {:#x} for type {}, which requires {} byte alignment", what,
                        static_cast<unsigned long long>(pointer), data.type->name(), alignment);
        return "UBSan: misaligned access";
    }
    base::format_to(sink, "{} address {:#x} with insufficient space for an object of type {}", what,
                    static_cast<unsigned long long>(pointer), data.type->name());
    return "UBSan: access outside an object";
}

const char* describe_overflow(Sink& sink, const abi::OverflowData& data, char op, ValueHandle lhs, ValueHandle rhs) {
    bool is_signed = data.type->is_signed_integer();
    base::format_to(sink, "{} integer overflow: ", is_signed ? "signed" : "unsigned");
    write_value(sink, *data.type, lhs);
    base::format_to(sink, " {} ", op);
    write_value(sink, *data.type, rhs);
    base::format_to(sink, " cannot be represented in type {}", data.type->name());
    return is_signed ? "UBSan: signed integer overflow" : "UBSan: unsigned integer overflow";
}

const char* describe_negate_overflow(Sink& sink, const abi::OverflowData& data, ValueHandle value) {
    bool is_signed = data.type->is_signed_integer();
    base::format_to(sink, "{} integer overflow: negation of ", is_signed ? "signed" : "unsigned");
    write_value(sink, *data.type, value);
    base::format_to(sink, " cannot be represented in type {}", data.type->name());
    return is_signed ? "UBSan: signed integer overflow" : "UBSan: unsigned integer overflow";
}

const char* describe_divrem_overflow(Sink& sink, const abi::OverflowData& data, ValueHandle lhs, ValueHandle rhs) {
    if (!data.type->is_integer() || is_zero(*data.type, rhs)) {
        sink.write("division by zero");
        return "UBSan: division by zero";
    }
    sink.write("signed integer overflow: division of ");
    write_value(sink, *data.type, lhs);
    sink.write(" by ");
    write_value(sink, *data.type, rhs);
    base::format_to(sink, " cannot be represented in type {}", data.type->name());
    return "UBSan: signed integer overflow";
}

const char* describe_shift_out_of_bounds(Sink& sink, const abi::ShiftOutOfBoundsData& data, ValueHandle lhs,
                                         ValueHandle rhs) {
    const abi::TypeDescriptor& lt = *data.lhs_type;
    const abi::TypeDescriptor& rt = *data.rhs_type;
    sink.write("shift out of bounds: ");
    if (is_negative(rt, rhs)) {
        sink.write("shift exponent ");
        write_value(sink, rt, rhs);
        sink.write(" is negative");
    } else if (rt.is_integer() && decode_integer(rt, rhs).magnitude >= lt.integer_bits()) {
        sink.write("shift exponent ");
        write_value(sink, rt, rhs);
        base::format_to(sink, " is too large for {}-bit type {}", lt.integer_bits(), lt.name());
    } else if (is_negative(lt, lhs)) {
        sink.write("left shift of negative value ");
        write_value(sink, lt, lhs);
    } else {
        sink.write("left shift of ");
        write_value(sink, lt, lhs);
        sink.write(" by ");
        write_value(sink, rt, rhs);
        base::format_to(sink, " places cannot be represented in type {}", lt.name());
    }
    return "UBSan: shift out of bounds";
}

const char* describe_out_of_bounds(Sink& sink, const abi::OutOfBoundsData& data, ValueHandle index) {
    sink.write("array index out of bounds: index ");
    write_value(sink, *data.index_type, index);
    base::format_to(sink, " out of bounds for type {}", data.array_type->name());
    return "UBSan: array index out of bounds";
}

const char* describe_load_invalid_value(Sink& sink, const abi::InvalidValueData& data, ValueHandle value) {
    sink.write("invalid value: load of value ");
    write_value(sink, *data.type, value);
    base::format_to(sink, ", which is not a valid value for type {}", data.type->name());
    return "UBSan: invalid value loaded";
}

const char* describe_vla_bound(Sink& sink, const abi::VlaBoundData& data, ValueHandle bound) {
    sink.write("variable length array bound evaluates to non-positive value ");
    write_value(sink, *data.type, bound);
    return "UBSan: non-positive VLA bound";
}

const char* describe_nonnull_arg(Sink& sink, const abi::NonNullArgData& data) {
    base::format_to(sink, "null pointer passed as argument {}, which is declared to never be null", data.arg_index);
    if (data.attr_loc.file)
        base::format_to(sink, " (nonnull attribute at {}:{})", data.attr_loc.file, data.attr_loc.line);
    return "UBSan: null passed as a nonnull argument";
}

const char* describe_nonnull_return(Sink& sink, const abi::NonNullReturnData& data) {
    sink.write("null pointer returned from function declared to never return null");
    if (data.attr_loc.file)
        base::format_to(sink, " (returns_nonnull attribute at {}:{})", data.attr_loc.file, data.attr_loc.line);
    return "UBSan: null returned from a returns_nonnull function";
}

const char* describe_pointer_overflow(Sink& sink, ValueHandle base, ValueHandle result) {
    auto b = static_cast<unsigned long long>(base);
    auto r = static_cast<unsigned long long>(result);
    sink.write("pointer overflow: ");
    if (b == 0 && r == 0)
        sink.write("applying zero offset to null pointer");
    else if (b == 0)
        base::format_to(sink, "applying non-zero offset {:#x} to null pointer", r);
    else if (r == 0)
        base::format_to(sink, "applying non-zero offset to non-null pointer {:#x} produced null pointer", b);
    else if ((static_cast<long long>(b) >= 0) == (static_cast<long long>(r) >= 0))
        base::format_to(sink, "{} of unsigned offset {} {:#x} overflowed to {:#x}",
                        b > r ? "addition" : "subtraction", b > r ? "to" : "from", b, r);
    else
        base::format_to(sink, "pointer index expression with base {:#x} overflowed to {:#x}", b, r);
    return "UBSan: pointer overflow";
}

const char* describe_invalid_builtin(Sink& sink, const abi::InvalidBuiltinData& data) {
    base::format_to(sink, "passing zero to {}, which is not a valid argument",
                    data.kind == abi::BuiltinCheckKind::CtzPassedZero ? "__builtin_ctz()" : "__builtin_clz()");
    return "UBSan: invalid argument to a builtin";
}

const char* describe_float_cast_overflow(Sink& sink, const abi::FloatCastOverflowData& data, ValueHandle from) {
    sink.write("float-cast overflow: ");
    write_value(sink, *data.from, from);
    base::format_to(sink, " is outside the range of representable values of type {}", data.to->name());
    return "UBSan: float-cast overflow";
}

const char* describe_unreachable(Sink& sink) {
    sink.write("execution reached an unreachable program point (__builtin_unreachable)");
    return "UBSan: unreachable code reached";
}

const char* describe_missing_return(Sink& sink) {
    sink.write("execution reached the end of a value-returning function without returning a value");
    return "UBSan: missing return";
}

} // namespace tessera::ubsan::detail
