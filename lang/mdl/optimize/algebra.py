"""Algebraic simplification: `Graph` -> `Graph` with no-op and mergeable layout and
arithmetic nodes rewritten, each result bit-identical to the original.

Rules (x any value, c a `const`; "drops" means later uses read x directly):
- `transpose` with the identity perm drops; `transpose(transpose(x, p), q)` is
  one transpose with perm `p[q[i]]`, or x when that is the identity.
- `reshape` to the shape x already has drops; `reshape(reshape(x))` is one
  reshape of x.
- `cast` to x's dtype drops; `cast(cast(x, t), dtype(x))` drops when t holds
  every value of x's dtype exactly (i32 -> i64, f16 -> f32, bool -> any, ...).
- `expand` to x's shape, a `slice` that takes everything and a `concat` of
  one tensor drop.
- `x * 1`, `1 * x`, `x / 1`, `x + 0`, `0 + x`, `x - 0` drop, where for floats
  the zero of `+` must be -0.0 (`-0.0 + 0.0` is +0.0, so `x + 0.0` is not x)
  and the zero of `-` must be +0.0. The constant may be a broadcast scalar, but
  the rule applies only when the result has exactly x's type (no broadcasting
  of x to a bigger shape).
- `neg(neg(x))` drops; `where(c, a, a)` is a; `where` of an all-true
  (all-false) constant condition is a (b), when the types agree.
"""

from __future__ import annotations

import numpy as np

from ..graph import Graph, Node, Value
from ..types import DType
from .rewrite import Rebuilder

# (from, via): a cast from -> via -> from gives back every value (nan payloads aside).
_EXACT_WIDENING = {
    (DType.I32, DType.I64),
    (DType.I32, DType.F64),
    (DType.F16, DType.F32),
    (DType.F16, DType.F64),
    (DType.BF16, DType.F32),
    (DType.BF16, DType.F64),
    (DType.F32, DType.F64),
} | {(DType.BOOL, d) for d in DType if d is not DType.BOOL}


def simplify(graph: Graph) -> Graph:
    rb = Rebuilder(graph)
    for node in graph.nodes:
        if not _rewrite(rb, node, rb.inputs_of(node)):
            rb.keep(node)
    return rb.finish()


def _rewrite(rb: Rebuilder, node: Node, ins: tuple[Value, ...]) -> bool:
    """Apply the first rule that matches `node`; False keeps it as it is."""
    out = node.outputs[0] if len(node.outputs) == 1 else None
    if out is None:
        return False
    match node.op:
        case "transpose":
            return _transpose(rb, node, ins[0], out)
        case "reshape":
            if ins[0].type == out.type:
                return _drop(rb, out, ins[0])
            inner = _produced_by(rb, ins[0], "reshape")
            if inner is None:
                return False
            source = rb.get(inner.inputs[0])
            if source.type == out.type:
                return _drop(rb, out, source)
            return rb.replace(node, "reshape", [source], {"shape": tuple(out.type.shape)})
        case "cast":
            return _cast(rb, ins[0], out)
        case "expand" | "concat" if len(ins) == 1 and ins[0].type == out.type:
            return _drop(rb, out, ins[0])
        case "slice" if ins[0].type == out.type:
            full = all(s == 0 for s in node.attrs["starts"]) and all(
                s == 1 for s in node.attrs["steps"]
            )
            return full and _drop(rb, out, ins[0])
        case "neg":
            inner = _produced_by(rb, ins[0], "neg")
            return inner is not None and _drop(rb, out, rb.get(inner.inputs[0]))
        case "mul":
            return _identity_operand(rb, out, ins, _is_one, both_sides=True)
        case "div":
            return _identity_operand(rb, out, ins, _is_one, both_sides=False)
        case "add":
            return _identity_operand(rb, out, ins, _is_add_zero, both_sides=True)
        case "sub":
            return _identity_operand(rb, out, ins, _is_sub_zero, both_sides=False)
        case "where":
            return _where(rb, out, ins)
    return False


def _drop(rb: Rebuilder, out: Value, replacement: Value) -> bool:
    if out.type != replacement.type:
        return False
    rb.forward(out, replacement)
    return True


def _produced_by(rb: Rebuilder, v: Value, op: str) -> Node | None:
    node = rb.producer.get(v.id)
    return node if node is not None and node.op == op else None


def _perm_of(node: Node, rank: int) -> tuple[int, ...]:
    perm = node.attrs.get("perm")
    if perm is None:
        return tuple(reversed(range(rank)))
    return tuple(int(p) % rank for p in perm)


def _transpose(rb: Rebuilder, node: Node, x: Value, out: Value) -> bool:
    rank = x.type.rank
    perm = _perm_of(node, rank)
    if perm == tuple(range(rank)):
        return _drop(rb, out, x)
    inner = _produced_by(rb, x, "transpose")
    if inner is None:
        return False
    source = rb.get(inner.inputs[0])
    first = _perm_of(inner, rank)
    composed = tuple(first[i] for i in perm)
    if composed == tuple(range(rank)):
        return _drop(rb, out, source)
    return rb.replace(node, "transpose", [source], {"perm": composed})


def _cast(rb: Rebuilder, x: Value, out: Value) -> bool:
    if x.type.dtype is out.type.dtype:
        return _drop(rb, out, x)
    inner = _produced_by(rb, x, "cast")
    if inner is None:
        return False
    source = rb.get(inner.inputs[0])
    if (source.type.dtype, x.type.dtype) in _EXACT_WIDENING:
        return source.type.dtype is out.type.dtype and _drop(rb, out, source)
    return False


def _identity_operand(rb: Rebuilder, out: Value, ins, is_identity, both_sides: bool) -> bool:
    """Drop `a op c` (and `c op a` if both_sides) when c is the op's identity for a's dtype."""
    a, b = ins
    c = rb.const_value(b)
    if c is not None and is_identity(c) and _drop(rb, out, a):
        return True
    if both_sides:
        c = rb.const_value(a)
        return c is not None and is_identity(c) and _drop(rb, out, b)
    return False


def _as_number(c: np.ndarray) -> np.ndarray:
    # f16 and bf16 widen exactly; numpy's signbit does not know bf16.
    dtype = DType.from_numpy(c.dtype)
    return c.astype(np.float64) if dtype is not None and dtype.is_float else c


def _is_one(c: np.ndarray) -> bool:
    return c.dtype != np.bool_ and bool(np.all(_as_number(c) == 1))


def _is_add_zero(c: np.ndarray) -> bool:
    c = _as_number(c)
    if c.dtype == np.bool_:
        return False
    if c.dtype.kind == "f":
        return bool(np.all((c == 0) & np.signbit(c)))
    return bool(np.all(c == 0))


def _is_sub_zero(c: np.ndarray) -> bool:
    c = _as_number(c)
    if c.dtype == np.bool_:
        return False
    if c.dtype.kind == "f":
        return bool(np.all((c == 0) & ~np.signbit(c)))
    return bool(np.all(c == 0))


def _where(rb: Rebuilder, out: Value, ins) -> bool:
    cond, a, b = ins
    if a is b:
        return _drop(rb, out, a)
    c = rb.const_value(cond)
    if c is None:
        return False
    if bool(np.all(c)):
        return _drop(rb, out, a)
    if not bool(np.any(c)):
        return _drop(rb, out, b)
    return False
