"""f32 `exp`, `erf` and `tanh` as straight-line LLVM IR, so that the loop vectorizer can vectorize them.

A call to libm (`expf`, `erf`) is a scalar call per element: LLVM cannot vectorize a
loop around it, and GELU's `erf` (computed in f64 by libm) cost about 10 ns per
element, 12% of the GPT example. These versions use only fused multiply-adds,
compares, selects and integer bit operations, without branches, and are inlined
where they are used; every vector lane and the scalar remainder compute the same
bits (`llvm.fma` is exact wherever it runs), so results still do not depend on
vector width or thread count.

Accuracy against the correctly rounded result (tests/native/test_vmath.py, which
measures it on millions of inputs and at the edges):

- `exp_f32`: at most 1 ulp (about 94% correctly rounded), subnormal results
  included; overflow to +inf above 88.72, 0 below -103.98; NaN stays NaN.
  Cody-Waite reduction x = n ln2 + r with |r| <= ln2/2 (ln2 split into a high part
  whose product with any n here is exact, and the rest), exp(r) by its Taylor
  polynomial of degree 7 (truncation under 0.05 ulp), then 2**n applied as two
  exact power-of-two factors so that a subnormal result rounds only once.
- `erf_f32`: at most 1 ulp (about 96% correctly rounded). Below |x| = 0.875,
  x + x R(x^2); above, 1 - exp(-x^2) Q(1 / (1 + |x|)) with x^2 kept exact as a
  head and a tail; |x| is clamped at 4, where erf is 1 in f32. Coefficients from
  tools/fit_vmath.py.
- `tanh_f32`: at most 1 ulp. Below |x| = 0.625, x + x T(x^2) (T(0) = 0 exactly, so
  tanh(-0) = -0); above, 1 - 2 / (exp(2|x|) + 1) with |x| clamped at 9.5, where tanh
  is 1 in f32.

f64 keeps libm (`exp`, `erf`, `tanh`): these polynomials are fitted for f32 only. f16 and
bf16 compute in f32 and round once, as for every other op.
"""

from __future__ import annotations

from typing import Any

import llvmlite.ir as ll

F32 = ll.FloatType()
I32 = ll.IntType(32)

LOG2E = 1.4426950408889634
LN2_HI = float.fromhex("0x1.62e400p-1")  # 0.693145751953125: 9 trailing zero bits
LN2_LO = 0.6931471805599453 - LN2_HI
EXP_LO, EXP_HI = -104.0, 89.0  # beyond these, exp rounds to 0 or overflows to inf in f32
EXP_TAYLOR = tuple(1.0 / f for f in (1, 1, 2, 6, 24, 120, 720, 5040))

ERF_BREAK = 0.875
ERF_CLAMP = 4.0  # erf(4) = 1 - 1.5e-8 rounds to 1 in f32
# tools/fit_vmath.py: erf(t)/t - 1 in t^2 on [0, 0.875]
ERF_SMALL = (
    float.fromhex("0x1.06eba80000000p-3"),
    float.fromhex("-0x1.8127440000000p-2"),
    float.fromhex("0x1.ce2e760000000p-4"),
    float.fromhex("-0x1.b819360000000p-6"),
    float.fromhex("0x1.553cd80000000p-8"),
    float.fromhex("-0x1.aec8080000000p-11"),
    float.fromhex("0x1.6d78fa0000000p-14"),
)
# tools/fit_vmath.py: erfc(t) exp(t^2) in 1/(1 + t) on [0.875, 4]
ERF_LARGE = (
    float.fromhex("0x1.450b740000000p-16"),
    float.fromhex("0x1.207f520000000p-1"),
    float.fromhex("0x1.26c2f80000000p-1"),
    float.fromhex("0x1.6ab1640000000p-3"),
    float.fromhex("0x1.42db3e0000000p-2"),
    float.fromhex("-0x1.6f52cc0000000p+1"),
    float.fromhex("0x1.26cff60000000p+2"),
    float.fromhex("-0x1.aaaed20000000p+1"),
    float.fromhex("0x1.f2b7380000000p-1"),
)


# every float add, multiply and divide below carries this metadata: `--fast-math`
# (fastmath.py) leaves such instructions alone, since reassociating the reduction steps or
# the two exact power-of-two factors would cost far more than the last bit
EXACT = "mdl.exact"


def _exact(b: ll.IRBuilder, instr: Any) -> Any:
    instr.set_metadata(EXACT, b.module.add_metadata([]))
    return instr


TANH_BREAK = 0.625
TANH_CLAMP = 9.5  # tanh(9.5) = 1 - 1.1e-8 rounds to 1 in f32
# tools/fit_vmath.py: tanh(t)/t - 1 in t^2 on [0, 0.625]
TANH_SMALL = (
    float.fromhex("0x0.0p+0"),
    float.fromhex("-0x1.5555560000000p-2"),
    float.fromhex("0x1.1110f20000000p-3"),
    float.fromhex("-0x1.ba0acc0000000p-5"),
    float.fromhex("0x1.64c2b00000000p-6"),
    float.fromhex("-0x1.11f00e0000000p-7"),
    float.fromhex("0x1.2e82fe0000000p-9"),
)


def _f(v: float) -> ll.Constant:
    return ll.Constant(F32, v)


def _call(b: ll.IRBuilder, name: str, *args: Any) -> Any:
    fn = b.module.declare_intrinsic(name, [F32], ll.FunctionType(F32, [F32] * len(args)))
    return b.call(fn, list(args))


def _fma(b: ll.IRBuilder, x: Any, y: Any, z: Any) -> Any:
    return _call(b, "llvm.fma", x, y, z)


def _horner(b: ll.IRBuilder, coefficients: tuple[float, ...], u: Any) -> Any:
    r: Any = _f(coefficients[-1])
    for c in coefficients[-2::-1]:
        r = _fma(b, r, u, _f(c))
    return r


def _pow2(b: ll.IRBuilder, n: Any) -> Any:
    """2**n as an f32, for a normal exponent n (i32)."""
    return b.bitcast(b.shl(b.add(n, ll.Constant(I32, 127)), ll.Constant(I32, 23)), F32)


def exp_f32(b: ll.IRBuilder, x: Any) -> Any:
    # minnum/maxnum return the number when x is NaN: the arithmetic stays defined and
    # the last select gives the NaN back
    xc = _call(b, "llvm.minnum", _call(b, "llvm.maxnum", x, _f(EXP_LO)), _f(EXP_HI))
    n = _call(b, "llvm.rint", _exact(b, b.fmul(xc, _f(LOG2E))))
    r = _fma(b, n, _f(-LN2_HI), xc)
    r = _fma(b, n, _f(-LN2_LO), r)
    p = _horner(b, EXP_TAYLOR, r)
    k = b.fptosi(n, I32)  # -150 .. 129
    k1 = b.ashr(k, ll.Constant(I32, 1))
    k2 = b.sub(k, k1)  # both halves are normal exponents: p * 2**k1 is exact
    result = _exact(b, b.fmul(_exact(b, b.fmul(p, _pow2(b, k1))), _pow2(b, k2)))
    return b.select(b.fcmp_unordered("uno", x, x), x, result)


def erf_f32(b: ll.IRBuilder, x: Any) -> Any:
    t = _call(b, "llvm.fabs", x)
    small = _fma(b, x, _horner(b, ERF_SMALL, _exact(b, b.fmul(x, x))), x)  # x + x R(x^2)
    tc = _call(b, "llvm.minnum", t, _f(ERF_CLAMP))
    q = _horner(b, ERF_LARGE, _exact(b, b.fdiv(_f(1.0), _exact(b, b.fadd(_f(1.0), tc)))))
    head = _exact(b, b.fmul(tc, tc))
    tail = _fma(b, tc, tc, b.fneg(head))  # tc^2 = head + tail exactly
    e = exp_f32(b, b.fneg(head))
    e = _fma(b, e, b.fneg(tail), e)  # exp(-head - tail) = exp(-head) (1 - tail)
    large = _call(b, "llvm.copysign", _fma(b, b.fneg(e), q, _f(1.0)), x)
    # NaN compares false and takes the small branch, which keeps it NaN
    return b.select(b.fcmp_ordered(">=", t, _f(ERF_BREAK)), large, small)


def tanh_f32(b: ll.IRBuilder, x: Any) -> Any:
    t = _call(b, "llvm.fabs", x)
    small = _fma(b, x, _horner(b, TANH_SMALL, _exact(b, b.fmul(x, x))), x)  # x + x T(x^2)
    tc = _call(b, "llvm.minnum", t, _f(TANH_CLAMP))
    e = exp_f32(b, _exact(b, b.fadd(tc, tc)))
    q = _exact(b, b.fdiv(_f(2.0), _exact(b, b.fadd(e, _f(1.0)))))
    large = _call(b, "llvm.copysign", _exact(b, b.fsub(_f(1.0), q)), x)
    # NaN compares false and takes the small branch, which keeps it NaN
    return b.select(b.fcmp_ordered(">=", t, _f(TANH_BREAK)), large, small)
