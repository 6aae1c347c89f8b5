"""f16 and bf16 in the emitter: conversions between the 16-bit storage and f32 registers.

The reference (primitives/elementwise.py) treats f16 and bf16 as storage types:
it computes in f32 and rounds every result once to the dtype. The emitter does
the same. A value of dtype f16 or bf16 lives in an f32 register holding exactly
a value of that dtype; a load widens the 16 bits (exact), a store narrows them
(exact, the value being representable), and every expression that computes a
new f16 or bf16 value is rounded right after it is computed (`round_f32`).

Roundings match numpy and ml_dtypes bit for bit (round to nearest even):
- f32 -> f16: LLVM's fptrunc to `half` (F16C's vcvtps2ph on x86).
- f64 -> f16: numpy rounds once. Rounding f64 to f32 with round-to-odd and then
  to f16 with round-to-nearest-even is one correct rounding (24 bits >= 11 + 2),
  and needs no `__truncdfhf2` from the C runtime.
- f32 -> bf16: ml_dtypes' round-to-nearest-even on the bits; a NaN becomes the
  quiet NaN 0x7fc0 with its sign. Done in integer arithmetic: x86's bf16
  instruction flushes subnormals, ml_dtypes does not.
- f64 -> bf16: ml_dtypes goes through f32 (two roundings); so does this.
"""

from __future__ import annotations

from typing import Any

import llvmlite.ir as ll

from ..types import DType

HALF_DTYPES = frozenset({DType.F16, DType.BF16})

I16 = ll.IntType(16)
I32 = ll.IntType(32)
F16 = ll.HalfType()
F32 = ll.FloatType()
F64 = ll.DoubleType()

_BF16_QUIET_NAN = 0x7FC00000
_SIGN = 0x80000000


def widen(b: ll.IRBuilder, bits: Any, dtype: DType) -> Any:
    """16 stored bits -> the f32 value they hold (exact)."""
    if dtype is DType.F16:
        return b.fpext(b.bitcast(bits, F16), F32)
    return b.bitcast(b.shl(b.zext(bits, I32), ll.Constant(I32, 16)), F32)


def narrow(b: ll.IRBuilder, x: Any, dtype: DType) -> Any:
    """An f32 register of dtype f16/bf16 -> its 16 bits; exact, since the register holds a
    value of the dtype (for bf16 the low half of the f32 is zero)."""
    if dtype is DType.F16:
        return b.bitcast(b.fptrunc(x, F16), I16)
    return b.trunc(b.lshr(b.bitcast(x, I32), ll.Constant(I32, 16)), I16)


def round_f32(b: ll.IRBuilder, x: Any, dtype: DType) -> Any:
    """An f32 value rounded to the nearest `dtype` value, kept in f32."""
    if dtype is DType.F16:
        return b.fpext(b.fptrunc(x, F16), F32)
    bits = b.bitcast(x, I32)
    # ml_dtypes: add 0x7fff plus the lowest kept bit, drop the low half (carries into
    # the exponent give the next binade or inf, as round-to-nearest-even should)
    lsb = b.and_(b.lshr(bits, ll.Constant(I32, 16)), ll.Constant(I32, 1))
    rounded = b.add(bits, b.add(lsb, ll.Constant(I32, 0x7FFF)))
    rounded = b.and_(rounded, ll.Constant(I32, 0xFFFF0000))
    nan = b.or_(b.and_(bits, ll.Constant(I32, _SIGN)), ll.Constant(I32, _BF16_QUIET_NAN))
    is_nan = b.fcmp_unordered("uno", x, x)
    return b.bitcast(b.select(is_nan, nan, rounded), F32)


def round_f64(b: ll.IRBuilder, x: Any, dtype: DType) -> Any:
    """An f64 value rounded to `dtype` as the reference's cast does, kept in f32."""
    if dtype is DType.BF16:
        return round_f32(b, b.fptrunc(x, F32), dtype)
    return round_f32(b, _to_f32_round_to_odd(b, x), dtype)


def _to_f32_round_to_odd(b: ll.IRBuilder, x: Any) -> Any:
    """f64 -> f32 truncated toward zero, with the lowest bit set when inexact ("sticky"):
    rounding this once more to a format of at most 22 bits is a single correct rounding."""
    nearest = b.fptrunc(x, F32)
    back = b.fpext(nearest, F64)
    bits = b.bitcast(nearest, I32)
    fabs = b.module.declare_intrinsic("llvm.fabs", [F64])
    # rounded away from zero: step back toward it (one ulp less in magnitude; from inf
    # that is the largest finite f32)
    away = b.fcmp_ordered(">", b.call(fabs, [back]), b.call(fabs, [x]))
    bits = b.select(away, b.sub(bits, ll.Constant(I32, 1)), bits)
    inexact = b.fcmp_ordered("!=", back, x)
    bits = b.select(inexact, b.or_(bits, ll.Constant(I32, 1)), bits)
    return b.bitcast(bits, F32)


def from_int(b: ll.IRBuilder, x: Any, width: int, dtype: DType) -> Any:
    """A signed integer of `width` bits -> f16/bf16 as the reference casts it."""
    if dtype is DType.BF16 and width > 32:
        # the reference goes through f64: i64 -> f64 -> f32 -> bf16, each rounding
        return round_f64(b, b.sitofp(x, F64), dtype)
    # i32 -> f32 equals i32 -> f64 -> f32 (f64 holds it exactly); for f16 every int that
    # does not overflow (|n| < 65520) is exact in f32, so rounding through f32 is exact
    return round_f32(b, b.sitofp(x, F32), dtype)


def constant(value: float, dtype: DType) -> ll.Constant:
    """A compile-time value rounded to `dtype` as the reference's cast from f64, in f32."""
    import numpy as np

    from ..primitives.elementwise import cast_array

    rounded = cast_array(np.asarray(float(value), dtype=np.float64), dtype)
    return ll.Constant(F32, float(rounded))
