"""Random applications of the element-wise, reduction, matmul, cast and constructor
primitives: `Builder` -> one more statement (True), or False when nothing fitted.

`OPS` maps every primitive name (and `nn`, the standard-library layers) to its generator;
the layout ones live in graphgen_layout.py, conv, pools and stdlib layers in graphgen_nn.py.
"""

from __future__ import annotations

from collections.abc import Callable

from graphgen import (
    ALL,
    FLOATS,
    HALVES,
    INTS,
    NUMS,
    ONE,
    Builder,
    Dim,
    Shape,
    Val,
    avoid,
    broadcast,
    const,
    kwargs,
    partner_shape,
)
from graphgen_layout import LAYOUT
from graphgen_nn import NN

Gen = Callable[[Builder], bool]
ZSIGN = "signed-zero-max-min"
SIGN_OF_ZERO = ("floordiv", "mod", "pow")  # and the divisor of div
OPS: dict[str, Gen] = {}


def register(*names: str) -> Callable[[Callable[[Builder, str], bool]], None]:
    def wrap(fn: Callable[[Builder, str], bool]) -> None:
        for name in names:
            OPS[name] = lambda b, name=name: fn(b, name)

    return wrap


# --- element-wise -----------------------------------------------------------------------------

# name: (operand dtypes, takes only exact floats, the result of exact operands is exact)
UNARY: dict[str, tuple[tuple[str, ...], bool, bool]] = {
    "exp": (FLOATS, False, False),
    "log": (FLOATS, True, False),
    "sqrt": (FLOATS, True, True),
    "rsqrt": (FLOATS, True, False),
    "tanh": (FLOATS, False, False),
    "erf": (FLOATS, False, False),
    "sigmoid": (FLOATS, False, False),
    "sin": (FLOATS, True, False),  # sin(1e6 * (1 + eps)) is anything
    "cos": (FLOATS, True, False),
    "floor": (FLOATS, True, True),
    "ceil": (FLOATS, True, True),
    "abs": (NUMS, False, True),
    "neg": (NUMS, False, True),
    "logical_not": (("bool",), False, True),
    "isnan": (FLOATS, True, True),
}


@register(*UNARY)
def unary(b: Builder, name: str) -> bool:
    dtypes, needs_exact, keeps_exact = UNARY[name]
    dtypes = b.kinds(dtypes) if keeps_exact else dtypes
    # rsqrt(-0) = -inf, rsqrt(+0) = inf
    x = b.operand(dtypes, exact=needs_exact, signed=name == "rsqrt" and avoid(ZSIGN))
    form = b.rng.random()
    if name == "neg" and form < 0.6:
        expr = f"-{x.name}"
    elif name == "logical_not" and form < 0.4:
        expr = f"not {x.name}"
    elif form < 0.75:
        expr = f"{name}({x.name})"
    else:
        expr = f"{x.name}.{name}()"
    dtype = "bool" if name == "isnan" else x.dtype
    huge = True if name == "exp" else None  # exp(88) is 1.6e38
    b.emit(name, expr, [x], [(dtype, x.shape)], exact=x.exact and keeps_exact, huge=huge)
    return True


# name: (operand dtypes, operator or surface function, exact floats only, exact result)
BINARY: dict[str, tuple[tuple[str, ...], str, bool, bool]] = {
    "add": (NUMS, "+", False, True),
    "sub": (NUMS, "-", False, True),
    "mul": (NUMS, "*", False, True),
    "div": (FLOATS, "/", False, True),  # the divisor must be exact: see below
    "floordiv": (NUMS, "//", True, True),
    "mod": (NUMS, "%", True, True),
    "pow": (NUMS, "**", True, False),
    "maximum": (NUMS, "max", False, True),
    "minimum": (NUMS, "min", False, True),
    "eq": (ALL, "==", True, True),
    "ne": (ALL, "!=", True, True),
    "lt": (NUMS, "<", True, True),
    "le": (NUMS, "<=", True, True),
    "gt": (NUMS, ">", True, True),
    "ge": (NUMS, ">=", True, True),
    "logical_and": (("bool",), "logical_and", False, True),
    "logical_or": (("bool",), "logical_or", False, True),
}


@register(*BINARY)
def binary(b: Builder, name: str) -> bool:
    dtypes, spelled, needs_exact, keeps_exact = BINARY[name]
    dtypes = b.kinds(dtypes) if keeps_exact else dtypes
    r = b.rng
    swap = r.random() < 0.5
    # a / b: a last-bit difference in a divisor near 0 is not a bug; keep divisors exact
    first_exact = needs_exact or (name == "div" and swap)
    other_exact = needs_exact or (name == "div" and not swap)
    # x / -0 = -inf, x / +0 = inf, and so for // % and a base of **
    first_signed = avoid(ZSIGN) and (name in SIGN_OF_ZERO or (name == "div" and swap))
    other_signed = avoid(ZSIGN) and (name in SIGN_OF_ZERO or (name == "div" and not swap))
    a = b.operand(dtypes, exact=first_exact, signed=first_signed)
    other: Val | None = None
    if r.random() < 0.25:
        half = not (name == "pow" and avoid("pow-half-is-sqrt"))
        text, shape, exact = b.literal(a.dtype, half), a.shape, True
    else:
        other = b.pick(
            lambda v: (
                v.dtype == a.dtype
                and b.fits_flags(v, other_exact, signed=other_signed)
                and (s := broadcast(a.shape, v.shape)) is not None
                and b.fits(s)
            ),
            avoid=[a],
        )
        if other is None:
            partner = partner_shape(b, a.shape)
            if not b.fits(broadcast(a.shape, partner) or ()):
                partner = a.shape
            other = b.new_operand(a.dtype, partner)
        text, exact = other.name, other.exact
        shape = broadcast(a.shape, other.shape) or a.shape
    lhs, rhs = (text, a.name) if swap else (a.name, text)
    if spelled.isidentifier():
        expr = f"{spelled}({lhs}, {rhs})"
    else:
        expr = f"{lhs} {spelled} {rhs}"
    dtype = "bool" if name in ("eq", "ne", "lt", "le", "gt", "ge") else a.dtype
    operands = [a] if other is None else [a, other]
    floats = a.dtype in FLOATS + HALVES
    b.emit(
        name,
        expr,
        operands,
        [(dtype, shape)],
        exact=a.exact and exact and keeps_exact,
        huge=True if name == "pow" and floats else None,
        zsign=True if name in ("maximum", "minimum") and floats and avoid(ZSIGN) else None,
    )
    return True


@register("where")
def where(b: Builder, name: str) -> bool:
    r = b.rng
    cond = b.operand(("bool",))
    a = b.pick(
        lambda v: (s := broadcast(cond.shape, v.shape)) is not None and b.fits(s), avoid=[cond]
    )
    if a is None:
        a = b.new_operand(r.choice(b.kinds(ALL)), partner_shape(b, cond.shape))
    shape = broadcast(cond.shape, a.shape) or cond.shape
    other = None
    if r.random() < 0.3:
        text, exact = b.literal(a.dtype), True
    else:
        other = b.pick(
            lambda v: (
                v.dtype == a.dtype and (s := broadcast(shape, v.shape)) is not None and b.fits(s)
            ),
            avoid=[a, cond],
        )
        if other is None:
            other = b.new_operand(a.dtype, partner_shape(b, shape))
        text, exact = other.name, other.exact
        shape = broadcast(shape, other.shape) or shape
    x, y = (a.name, text) if r.random() < 0.5 else (text, a.name)
    operands = [cond, a] + ([other] if other is not None else [])
    b.emit(name, f"where({cond.name}, {x}, {y})", operands, [(a.dtype, shape)], a.exact and exact)
    return True


@register("cast")
def cast(b: Builder, name: str) -> bool:
    target = b.rng.choice(b.kinds(ALL))
    # float -> int or bool jumps at integers and at 0, and f16/bf16 round: exact floats only
    x = b.operand(b.kinds(ALL), exact=target not in FLOATS)
    expr = f"cast({x.name}, {target})" if b.rng.random() < 0.6 else f"{x.name}.cast({target})"
    # 2 ** 63 is a float too
    huge = True if x.dtype in INTS and target in FLOATS + HALVES else None
    b.emit(name, expr, [x], [(target, x.shape)], exact=x.exact, huge=huge)
    return True


# --- reductions ---------------------------------------------------------------------------------

SURFACE = {
    "reduce_sum": "sum",
    "reduce_mean": "mean",
    "reduce_prod": "prod",
    "reduce_max": "max",
    "reduce_min": "min",
}


def random_axes(b: Builder, rank: int) -> list[int] | None:
    r = b.rng
    if rank == 0 or r.random() < 0.2:
        return None
    count = r.randint(1, rank)
    return r.sample(range(rank), count)


def axis_text(b: Builder, axis: int, rank: int) -> str:
    return str(axis - rank if b.rng.random() < 0.3 else axis)


@register(*SURFACE)
def reduction(b: Builder, name: str) -> bool:
    r = b.rng
    # a sum of 1e30, 1, -1e30 depends on the order; one of calm f16/bf16 values in f64 does
    # not, but a product of them may
    dtypes = FLOATS if name == "reduce_mean" else NUMS
    x = b.operand(
        dtypes if name == "reduce_prod" else b.kinds(dtypes),
        calm=name in ("reduce_sum", "reduce_mean"),
    )
    axes = random_axes(b, x.rank)
    keep = r.random() < 0.4
    if axes is None:
        shape: Shape = tuple(ONE for _ in x.shape) if keep else ()
        axis = None
    else:
        shape = tuple(
            ONE if i in axes else d for i, d in enumerate(x.shape) if keep or i not in axes
        )
        if len(axes) == 1 and r.random() < 0.6:
            axis = axis_text(b, axes[0], x.rank)
        else:
            axis = "[" + ", ".join(axis_text(b, a, x.rank) for a in axes) + "]"
    args = kwargs([("axis", axis), ("keep", "true" if keep else None)])
    surface = SURFACE[name]
    if r.random() < 0.3:
        expr = f"{x.name}.{surface}({args.removeprefix(', ')})"
    else:
        expr = f"{surface}({x.name}{args})"
    extreme = name in ("reduce_max", "reduce_min")
    zsign = True if extreme and x.dtype in FLOATS + HALVES and avoid(ZSIGN) else None
    exact = x.exact and (extreme or x.dtype in HALVES)
    b.emit(name, expr, [x], [(x.dtype, shape)], exact=exact, zsign=zsign)
    return True


@register("rows")
def row_region(b: Builder, name: str) -> bool:
    """A softmax, log-softmax or norm over random axes: what the native backend lowers as
    one row kernel (backend/rowplan.py), with its reductions, row values and row scalars."""
    r = b.rng
    x = b.operand(
        FLOATS, lambda v: v.rank >= 1, calm=True, shape=lambda: b.rand_shape(r.randint(1, 3))
    )
    axes = sorted(r.sample(range(x.rank), r.randint(1, min(2, x.rank))))
    axis = axis_text(b, axes[0], x.rank) if len(axes) == 1 else f"[{', '.join(map(str, axes))}]"
    v, k = x.name, f"axis={axis}, keep=true"
    match r.randrange(4):
        case 0:  # softmax
            e = f"exp({v} - max({v}, {k}))"
            expr = f"{e} / sum({e}, {k})"
        case 1:  # log-softmax
            shifted = f"({v} - max({v}, {k}))"
            expr = f"{shifted} - log(sum(exp({shifted}), {k}))"
        case 2:  # layer norm without the affine part
            c = f"({v} - mean({v}, {k}))"
            expr = f"{c} * rsqrt(mean({c} * {c}, {k}) + 1e-5)"
        case _:  # RMS norm with a scale
            expr = f"{v} * rsqrt(mean({v} * {v}, {k}) + 1e-6) * 1.5"
    b.emit(name, expr, [x], [(x.dtype, x.shape)], exact=False)
    return True


@register("argmax", "argmin")
def arg_reduction(b: Builder, name: str) -> bool:
    r = b.rng
    x = b.operand(
        b.kinds(NUMS),
        lambda v: v.rank >= 1,
        exact=True,
        shape=lambda: b.rand_shape(r.randint(1, 3)),
    )
    axis = r.randrange(x.rank)
    keep = r.random() < 0.4
    shape = tuple(ONE if i == axis else d for i, d in enumerate(x.shape) if keep or i != axis)
    n = x.shape[axis]
    args = kwargs([("axis", axis_text(b, axis, x.rank)), ("keep", "true" if keep else None)])
    expr = (
        f"{name}({x.name}{args})"
        if r.random() < 0.7
        else f"{x.name}.{name}({args.removeprefix(', ')})"
    )
    b.emit(name, expr, [x], [("i64", shape)], range_=(0, n.c) if n.known else None)
    return True


# --- matmul -----------------------------------------------------------------------------------


def matmul_shape(a: Shape, c: Shape) -> Shape | None:
    """numpy's `a @ c`, or None when the operands do not fit."""
    if not a or not c:
        return None
    k_a = a[-1]
    k_c = c[0] if len(c) == 1 else c[-2]
    if k_a != k_c:
        return None
    if len(a) == 1 and len(c) == 1:
        return ()
    if len(a) == 1:
        return c[:-2] + c[-1:]
    if len(c) == 1:
        return a[:-1]
    batch = broadcast(a[:-2], c[:-2])
    return None if batch is None else batch + (a[-2], c[-1])


TILE_EDGES = (1, 7, 15, 16, 17, 31, 33, 63, 65)


@register("matmul")
def matmul(b: Builder, name: str) -> bool:
    r = b.rng
    # now and then sizes around the tiles of a blocked GEMM (16, 32, 64 and off by one)
    big = r.random() < 0.25
    # f16/bf16 operands are coarse: their f32 sums are exact in any order
    if big:
        sizes = [const(r.choice(TILE_EDGES)) for _ in range(2)]
        a = b.new_operand(r.choice(b.kinds(NUMS)), tuple(sizes), calm=True, coarse=True)
    else:  # the sums of a float matmul take no huge values (see reduce_sum)
        a = b.operand(
            b.kinds(NUMS),
            lambda v: 1 <= v.rank <= 4,
            shape=lambda: b.rand_shape(r.randint(1, 3)),
            calm=True,
            coarse=True,
        )
    other = b.pick(
        lambda v: (
            v.dtype == a.dtype
            and b.fits_flags(v, calm=True, coarse=True)
            and (s := matmul_shape(a.shape, v.shape)) is not None
            and b.fits(s)
        ),
        avoid=[a],
    )
    transposed = False
    if other is None:
        k = a.shape[-1]
        n = const(r.choice(TILE_EDGES) if big else b.size())
        rank = r.choice((1, 2, 2, 2, 3)) if a.rank <= 2 else r.choice((1, 2, a.rank))
        if rank == 1:
            shape: Shape = (k,)
        else:
            batch = partner_shape(b, a.shape[:-2])[-(rank - 2) :] if rank > 2 else ()
            while len(batch) < rank - 2:
                batch = (const(b.size()),) + batch
            shape = batch + (k, n)
        if matmul_shape(a.shape, shape) is None or not b.fits(matmul_shape(a.shape, shape)):
            shape = (k,)
        transposed = rank == 2 and shape != (k,) and r.random() < 0.4
        if transposed:
            other = b.new_operand(a.dtype, (shape[1], shape[0]), weight=0.5, calm=True, coarse=True)
        else:
            other = b.new_operand(a.dtype, shape, weight=0.5, calm=True, coarse=True)
        out = matmul_shape(a.shape, shape)
    else:
        out = matmul_shape(a.shape, other.shape)
    assert out is not None
    rhs = f"{other.name}.T" if transposed else other.name
    expr = f"{a.name} @ {rhs}" if r.random() < 0.7 else f"matmul({a.name}, {rhs})"
    b.emit(name, expr, [a, other], [(a.dtype, out)], exact=a.dtype in INTS + HALVES)
    return True


# --- constructors -------------------------------------------------------------------------------


@register("arange")
def arange(b: Builder, name: str) -> bool:
    r = b.rng
    dtype = r.choice(("i64", "i64", "i32", "f32", "f64") + (HALVES if b.half else ()))
    form = r.random()
    # with known bounds the optimizer folds it into a constant: native code sees it only
    # when its length is known at run time
    if b.use_batch and form < 0.7:
        lo = r.choice((0, 0, 2))
        hi = Dim(1, lo + r.choice((0, 1, 3)))  # B + something >= 1 elements
        args = b.dim(hi) if lo == 0 and r.random() < 0.5 else f"{lo}, {b.dim(hi)}"
        length, values = Dim(hi.k, hi.c - lo), None
    else:
        step = r.choice((1, 1, 2, 3, -1, -2))
        count = b.size()
        lo = r.randint(-5, 5)
        hi = lo + step * (count - 1) + (1 if step > 0 else -1)  # just past the last value
        if step == 1 and lo == 0 and r.random() < 0.5:
            args = str(hi)
        elif step == 1:
            args = f"{lo}, {hi}"
        else:
            args = f"{lo}, {hi}, {step}" if r.random() < 0.5 else f"{lo}, {hi}, step={step}"
        length = const(len(range(lo, hi, step)))
        values = range(lo, hi, step)
    if dtype != "i64" or r.random() < 0.2:
        args += f", dtype={dtype}"
    span = (min(values), max(values) + 1) if values is not None and dtype in INTS else None
    b.emit(name, f"arange({args})", [], [(dtype, (length,))], range_=span)
    return True


@register("full")
def full(b: Builder, name: str) -> bool:
    r = b.rng
    dtype = r.choice(b.kinds(ALL))
    shape = b.rand_shape()
    if b.use_batch and shape and shape[0].known and r.random() < 0.5:
        shape = (Dim(1, 0), *shape[1:])  # else it is folded into a constant, as arange
    dims = "[" + ", ".join(b.dim(d) for d in shape) + "]"
    span = None
    if dtype == "bool":
        value, default = r.choice(("true", "false")), "bool"
    elif dtype in INTS:
        n = r.choice((0, 1, 3, -2, 7, 2**31 - 1 if dtype == "i32" else 2**40))
        value, default, span = str(n), "i64", (n, n + 1)
    else:
        value = r.choice(("0.5", "-2.0", "3.25", "inf", "-inf", "nan", "1e-3", "2"))
        default = "i64" if value == "2" else "f32"
    explicit = dtype != default or r.random() < 0.2
    args = f"{dims}, {value}" + (f", dtype={dtype}" if explicit else "")
    b.emit(name, f"full({args})", [], [(dtype, shape)], range_=span)
    return True


OPS.update(LAYOUT)
OPS.update(NN)
