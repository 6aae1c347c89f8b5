"""Integer and float arithmetic the emitter expands inline: (builder, LLVM values) -> values.

numpy's floor division and modulo on floats (`npy_divmod`), Python's on ints (with
x // 0 = x % 0 = 0 and no overflow trap), and integer power by squaring: the
semantics of the reference (primitives/elementwise.py), used by emit.py.
"""

from __future__ import annotations

from typing import Any

import llvmlite.ir as ll


def _intrinsic(b: ll.IRBuilder, name: str, t: ll.Type, args: list[Any]) -> Any:
    fn = b.module.declare_intrinsic(name, [t], ll.FunctionType(t, [t] * len(args)))
    return b.call(fn, args)


def float_divmod(b: ll.IRBuilder, a: Any, b_: Any, t: ll.Type) -> tuple[Any, Any]:
    """numpy's npy_divmod: floor division and modulo with the sign of the divisor."""
    zero = ll.Constant(t, 0.0)
    mod = b.frem(a, b_)
    div = b.fdiv(b.fsub(a, mod), b_)
    adjust = b.and_(
        b.fcmp_unordered("!=", mod, zero),
        b.xor(b.fcmp_ordered("<", b_, zero), b.fcmp_ordered("<", mod, zero)),
    )
    mod = b.select(adjust, b.fadd(mod, b_), mod)
    div = b.select(adjust, b.fsub(div, ll.Constant(t, 1.0)), div)
    mod = b.select(
        b.fcmp_ordered("==", mod, zero), _intrinsic(b, "llvm.copysign", t, [zero, b_]), mod
    )
    floordiv = _intrinsic(b, "llvm.floor", t, [div])
    floordiv = b.select(
        b.fcmp_ordered(">", b.fsub(div, floordiv), ll.Constant(t, 0.5)),
        b.fadd(floordiv, ll.Constant(t, 1.0)),
        floordiv,
    )
    floordiv = b.select(
        b.fcmp_ordered("==", div, zero),
        _intrinsic(b, "llvm.copysign", t, [zero, b.fdiv(a, b_)]),
        floordiv,
    )
    by_zero = b.fcmp_ordered("==", b_, zero)
    return b.select(by_zero, b.fdiv(a, b_), floordiv), b.select(by_zero, b.frem(a, b_), mod)


def int_divmod(b: ll.IRBuilder, a: Any, d: Any, t: ll.Type) -> tuple[Any, Any]:
    """Python's // and % on ints, with x // 0 = x % 0 = 0 and no overflow trap."""
    zero, one, minus_one = ll.Constant(t, 0), ll.Constant(t, 1), ll.Constant(t, -1)
    unsafe = b.or_(b.icmp_signed("==", d, zero), b.icmp_signed("==", d, minus_one))
    safe_d = b.select(unsafe, one, d)
    q = b.sdiv(a, safe_d)
    r = b.srem(a, safe_d)
    adjust = b.and_(
        b.icmp_signed("!=", r, zero),
        b.xor(b.icmp_signed("<", r, zero), b.icmp_signed("<", d, zero)),
    )
    q = b.select(adjust, b.sub(q, one), q)
    r = b.select(adjust, b.add(r, d), r)
    is_zero = b.icmp_signed("==", d, zero)
    q = b.select(is_zero, zero, b.select(b.icmp_signed("==", d, minus_one), b.sub(zero, a), q))
    r = b.select(unsafe, zero, r)
    return q, r


def int_pow(module: ll.Module, decls: dict[str, Any], t: ll.Type) -> ll.Function:
    """Integer power by squaring, wrapping; a negative exponent truncates toward zero."""
    name = f"mdl_ipow_{t.width}"
    if name in decls:
        return decls[name]
    fn = ll.Function(module, ll.FunctionType(t, [t, t]), name)
    fn.linkage = "internal"
    decls[name] = fn
    base, exp = fn.args
    b = ll.IRBuilder(fn.append_basic_block("entry"))
    zero, one, minus_one = ll.Constant(t, 0), ll.Constant(t, 1), ll.Constant(t, -1)
    neg_bb = fn.append_basic_block("negative")
    pos_bb = fn.append_basic_block("loop_head")
    b.cbranch(b.icmp_signed("<", exp, zero), neg_bb, pos_bb)
    b.position_at_end(neg_bb)
    # 1 ** -k = 1; (-1) ** -k = +-1; otherwise |1/x| < 1 truncates to 0 (0 ** -k too)
    odd = b.icmp_unsigned("!=", b.and_(exp, one), zero)
    b.ret(
        b.select(
            b.icmp_signed("==", base, one),
            one,
            b.select(b.icmp_signed("==", base, minus_one), b.select(odd, minus_one, one), zero),
        )
    )
    entry_bb = pos_bb
    b.position_at_end(entry_bb)
    loop = fn.append_basic_block("loop")
    done = fn.append_basic_block("done")
    b.branch(loop)
    b.position_at_end(loop)
    acc = b.phi(t)
    x = b.phi(t)
    e = b.phi(t)
    acc.add_incoming(one, entry_bb)
    x.add_incoming(base, entry_bb)
    e.add_incoming(exp, entry_bb)
    bit = b.icmp_unsigned("!=", b.and_(e, one), zero)
    acc2 = b.select(bit, b.mul(acc, x), acc)
    x2 = b.mul(x, x)
    e2 = b.lshr(e, one)
    acc.add_incoming(acc2, loop)
    x.add_incoming(x2, loop)
    e.add_incoming(e2, loop)
    b.cbranch(b.icmp_unsigned("!=", e2, zero), loop, done)
    b.position_at_end(done)
    result = b.phi(t)
    result.add_incoming(acc2, loop)
    b.ret(result)
    return fn
