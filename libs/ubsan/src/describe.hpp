#pragma once
// The words of a UBSan report: each describe_* function writes the one-line
// description of a failed check (wording after compiler-rt's, so reports
// read the same as on a hosted system) and returns a short title for the
// panic line, a string literal. Pure functions of the descriptor and the
// operands: the in-kernel tests feed them synthetic descriptors.
//
// Built without instrumentation (lib.mk): a check failing in here would
// re-enter the runtime.
#include "abi.hpp"
#include <base/format.hpp>

namespace tessera::ubsan::detail {

using abi::ValueHandle;
using base::Sink;

// An operand in its type: decimal for integers (up to 128 bits), raw bits
// for floating point (no FP formatting in the kernel).
void write_value(Sink& sink, const abi::TypeDescriptor& type, ValueHandle value);

const char* describe_type_mismatch(Sink& sink, const abi::TypeMismatchData& data, ValueHandle pointer);
// `op` is '+', '-' or '*'.
const char* describe_overflow(Sink& sink, const abi::OverflowData& data, char op, ValueHandle lhs, ValueHandle rhs);
const char* describe_negate_overflow(Sink& sink, const abi::OverflowData& data, ValueHandle value);
const char* describe_divrem_overflow(Sink& sink, const abi::OverflowData& data, ValueHandle lhs, ValueHandle rhs);
const char* describe_shift_out_of_bounds(Sink& sink, const abi::ShiftOutOfBoundsData& data, ValueHandle lhs,
                                         ValueHandle rhs);
const char* describe_out_of_bounds(Sink& sink, const abi::OutOfBoundsData& data, ValueHandle index);
const char* describe_load_invalid_value(Sink& sink, const abi::InvalidValueData& data, ValueHandle value);
const char* describe_vla_bound(Sink& sink, const abi::VlaBoundData& data, ValueHandle bound);
const char* describe_nonnull_arg(Sink& sink, const abi::NonNullArgData& data);
const char* describe_nonnull_return(Sink& sink, const abi::NonNullReturnData& data);
const char* describe_pointer_overflow(Sink& sink, ValueHandle base, ValueHandle result);
const char* describe_invalid_builtin(Sink& sink, const abi::InvalidBuiltinData& data);
const char* describe_float_cast_overflow(Sink& sink, const abi::FloatCastOverflowData& data, ValueHandle from);
const char* describe_unreachable(Sink& sink);
const char* describe_missing_return(Sink& sink);

} // namespace tessera::ubsan::detail
