"""Random applications of the layout primitives (reshape, transpose, expand, concat, stack,
split, slicing, pad, gather): `Builder` -> one more statement (True), or False when
nothing fitted.

Shapes with the batch symbol follow what the checker can prove: a reshape needs the
element count as `k * B` on one pure axis, a slice of a batch axis takes only the forms
whose length is known (`:`, `-1:`, `:1`, an index, `a:` and `:-a` on `k * B + c` with
enough room), a split of `k * B` needs sections dividing k, a gather along a batch axis
only indices in -1..1.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from graphgen import (
    ALL,
    INTS,
    ONE,
    Builder,
    Dim,
    Shape,
    Val,
    const,
    kwargs,
)

LAYOUT: dict[str, Callable[[Builder], bool]] = {}


def register(name: str) -> Callable[[Callable[[Builder], bool]], Callable[[Builder], bool]]:
    def wrap(fn: Callable[[Builder], bool]) -> Callable[[Builder], bool]:
        LAYOUT[name] = fn
        return fn

    return wrap


def dims_text(b: Builder, dims: Shape | list[Dim]) -> str:
    return ", ".join(b.dim(d) for d in dims)


def method_or_call(b: Builder, name: str, x: Val, args: str) -> str:
    if b.rng.random() < 0.35:
        return f"{x.name}.{name}({args})"
    return f"{name}({x.name}{', ' + args if args else ''})"


def factorize(b: Builder, n: int, rank: int) -> list[int]:
    """`n` as a product of `rank` random factors."""
    out = [1] * rank
    p = 2
    while n > 1:
        while n % p == 0:
            out[b.rng.randrange(rank)] *= p
            n //= p
        p += 1
    return out


def reshapable(shape: Shape) -> bool:
    batch = [d for d in shape if not d.known]
    return len(batch) == 0 or (len(batch) == 1 and batch[0].c == 0)


@register("reshape")
def reshape(b: Builder) -> bool:
    r = b.rng
    x = b.operand(b.kinds(ALL), lambda v: reshapable(v.shape))
    batch = [d for d in x.shape if not d.known]
    total = math.prod(d.c for d in x.shape if d.known) * (batch[0].k if batch else 1)
    rank = r.randint(1, 4)
    dims = [const(f) for f in factorize(b, total, rank)]
    if batch:
        j = r.randrange(rank)
        dims[j] = Dim(dims[j].c, 0)
    texts = [b.dim(d) for d in dims]
    if r.random() < 0.4:
        texts[r.randrange(rank)] = "-1"
    args = ", ".join(texts)
    if r.random() < 0.2:
        args = f"[{args}]"
    b.emit(
        "reshape",
        method_or_call(b, "reshape", x, args),
        [x],
        [(x.dtype, tuple(dims))],
        x.exact,
        x.range,
    )
    return True


@register("transpose")
def transpose(b: Builder) -> bool:
    r = b.rng
    x = b.operand(b.kinds(ALL), lambda v: v.rank >= 2, shape=lambda: b.rand_shape(r.randint(2, 4)))
    rank = x.rank
    form = r.random()
    if form < 0.2:
        perm = list(range(rank - 2)) + [rank - 1, rank - 2]
        expr = f"{x.name}.T"
    elif form < 0.3:
        perm = list(reversed(range(rank)))
        expr = f"transpose({x.name})"
    else:
        perm = r.sample(range(rank), rank)
        args = ", ".join(str(p - rank if r.random() < 0.2 else p) for p in perm)
        expr = method_or_call(b, "transpose", x, f"[{args}]" if r.random() < 0.2 else args)
    shape = tuple(x.shape[p] for p in perm)
    b.emit("transpose", expr, [x], [(x.dtype, shape)], x.exact, x.range)
    return True


@register("expand")
def expand(b: Builder) -> bool:
    r = b.rng
    x = b.operand(b.kinds(ALL), lambda v: v.rank <= 3)
    dims: list[Dim] = []
    texts: list[str] = []
    for d in x.shape:
        if d == ONE and r.random() < 0.7:
            new = Dim(1, 0) if b.use_batch and r.random() < 0.2 else const(b.size())
            dims.append(new)
            texts.append(b.dim(new))
        else:
            dims.append(d)
            texts.append("-1" if r.random() < 0.3 else b.dim(d))
    for _ in range(r.choice((0, 0, 1, 2))):
        new = const(b.size())
        dims.insert(0, new)
        texts.insert(0, b.dim(new))
    if not b.fits(tuple(dims)) or not dims:
        return False
    expr = method_or_call(b, "expand", x, ", ".join(texts))
    b.emit("expand", expr, [x], [(x.dtype, tuple(dims))], x.exact, x.range)
    return True


def join_range(vals: list[Val]) -> tuple[int, int] | None:
    if any(v.range is None for v in vals):
        return None
    return min(v.range[0] for v in vals), max(v.range[1] for v in vals)  # type: ignore[index]


def same_but(b: Builder, x: Val, axis: int | None) -> Val:
    """An operand like `x` (dtype, shape), free along `axis`."""

    def fits(v: Val) -> bool:
        return (
            v.dtype == x.dtype
            and v.rank == x.rank
            and all(
                d == e for i, (d, e) in enumerate(zip(v.shape, x.shape, strict=True)) if i != axis
            )
        )

    found = b.pick(fits, fresh=0.4, avoid=[x])
    if found is not None:
        return found
    shape = list(x.shape)
    if axis is not None and b.rng.random() < 0.6:
        shape[axis] = const(b.size())
    return b.new_operand(x.dtype, tuple(shape))


@register("concat")
def concat(b: Builder) -> bool:
    r = b.rng
    x = b.operand(b.kinds(ALL), lambda v: v.rank >= 1, shape=lambda: b.rand_shape(r.randint(1, 3)))
    axis = r.randrange(x.rank)
    parts = [x] + [same_but(b, x, axis) for _ in range(r.choice((1, 1, 2)))]
    r.shuffle(parts)
    size = Dim(0, 0)
    for p in parts:
        size = size + p.shape[axis]
    shape = x.shape[:axis] + (size,) + x.shape[axis + 1 :]
    if not b.fits(shape):
        return False
    names = ", ".join(p.name for p in parts)
    axis_arg = kwargs([("axis", str(axis - x.rank) if r.random() < 0.3 else str(axis))])
    if axis == 0 and r.random() < 0.3:
        axis_arg = ""
    expr = f"concat([{names}]{axis_arg})" if r.random() < 0.3 else f"concat({names}{axis_arg})"
    exact = all(p.exact for p in parts)
    b.emit("concat", expr, parts, [(x.dtype, shape)], exact, join_range(parts))
    return True


@register("stack")
def stack(b: Builder) -> bool:
    r = b.rng
    x = b.operand(b.kinds(ALL), lambda v: v.rank <= 3)
    parts = [x] + [same_but(b, x, None) for _ in range(r.choice((1, 1, 2)))]
    r.shuffle(parts)
    axis = r.randint(0, x.rank)
    shape = x.shape[:axis] + (const(len(parts)),) + x.shape[axis:]
    if not b.fits(shape):
        return False
    names = ", ".join(p.name for p in parts)
    axis_arg = f", axis={axis - x.rank - 1 if r.random() < 0.3 else axis}"
    expr = f"stack([{names}]{axis_arg})" if r.random() < 0.3 else f"stack({names}{axis_arg})"
    exact = all(p.exact for p in parts)
    b.emit("stack", expr, parts, [(x.dtype, shape)], exact, join_range(parts))
    return True


def splittable(d: Dim) -> bool:
    return (d.known and d.c >= 2) or (d.k >= 2 and d.c == 0)


@register("split")
def split(b: Builder) -> bool:
    r = b.rng
    x = b.operand(
        b.kinds(ALL),
        lambda v: any(splittable(d) for d in v.shape),
        shape=lambda: b.rand_shape(r.randint(1, 3), batch_first=False),
    )
    axes = [i for i, d in enumerate(x.shape) if splittable(d)]
    if not axes:
        return False
    axis = r.choice(axes)
    d = x.shape[axis]
    n = d.c if d.known else d.k
    divisors = [s for s in range(1, min(n, 6) + 1) if n % s == 0]
    axis_arg = kwargs([("axis", str(axis - x.rank) if r.random() < 0.3 else str(axis))])
    if axis == 0 and r.random() < 0.3:
        axis_arg = ""
    if d.known and (r.random() < 0.4 or divisors == [1]):
        cuts = sorted(r.sample(range(1, n), min(n - 1, r.randint(1, 3))))
        sizes = [e - s for s, e in zip([0, *cuts], [*cuts, n], strict=True)]
        parts = [const(s) for s in sizes]
        listed = "[" + ", ".join(map(str, sizes)) + "]"
        args = f"sizes={listed}" if r.random() < 0.5 else listed
    else:
        s = r.choice([v for v in divisors if v > 1] or divisors)
        parts = [Dim(d.k // s, d.c // s)] * s
        args = str(s)
    expr = method_or_call(b, "split", x, args + axis_arg)
    outs = [(x.dtype, x.shape[:axis] + (p,) + x.shape[axis + 1 :]) for p in parts]
    b.emit("split", expr, [x], outs, x.exact, x.range)
    return True


def slice_item(b: Builder, d: Dim) -> tuple[str, Dim | None]:
    """One subscript item for an axis of size `d`: its text, and the axis it leaves."""
    r = b.rng
    if not d.known:
        forms: list[tuple[str, Dim | None]] = [
            (":", d),
            ("-1:", ONE),
            (":1", ONE),
            ("0", None),
            ("-1", None),
        ]
        for a in range(1, d.k + d.c):  # k * B + c - a >= 1 for every B >= 1
            forms += [(f"{a}:", Dim(d.k, d.c - a)), (f":-{a}", Dim(d.k, d.c - a))]
        return r.choice(forms)
    n = d.c
    for _ in range(10):
        form = r.random()
        if form < 0.15:
            i = r.randrange(-n, n)
            return str(i), None
        start = r.choice((None, r.randint(-n - 2, n + 1)))
        stop = r.choice((None, r.randint(-n - 1, n + 2)))
        step = r.choice((None, 1, 2, 3)) if form < 0.7 else None
        length = len(range(n)[slice(start, stop, step)])
        if length:
            text = ("" if start is None else str(start)) + ":" + ("" if stop is None else str(stop))
            if step is not None:
                text += f":{step}"
            return text, const(length)
    return ":", d


@register("slice")
def slice_(b: Builder) -> bool:
    r = b.rng
    x = b.operand(b.kinds(ALL), lambda v: v.rank >= 1, shape=lambda: b.rand_shape(r.randint(1, 3)))
    items: list[str] = []
    shape: list[Dim] = []
    for d in x.shape:
        text, kept = slice_item(b, d)
        items.append(text)
        if kept is not None:
            shape.append(kept)
    if r.random() < 0.2:  # a new axis
        at = r.randint(0, len(items))
        items.insert(at, "None")
        shape.insert(sum(1 for t in items[:at] if ":" in t or t == "None"), ONE)
    if len(items) > 1 and items[0] == ":" and r.random() < 0.3:
        items[0] = "..."  # stands for exactly one axis: every other item stays
    else:
        while len(items) > 1 and items[-1] == ":" and r.random() < 0.5:
            items.pop()
    expr = f"{x.name}[{', '.join(items)}]"
    b.emit("slice", expr, [x], [(x.dtype, tuple(shape))], x.exact, x.range)
    return True


@register("pad")
def pad(b: Builder) -> bool:
    r = b.rng
    x = b.operand(
        b.kinds(ALL), lambda v: 1 <= v.rank <= 4, shape=lambda: b.rand_shape(r.randint(1, 3))
    )
    amounts: list[Dim] = []
    for _ in range(2 * x.rank):
        if b.use_batch and r.random() < 0.05:
            amounts.append(Dim(1, 0))
        else:
            amounts.append(const(r.choice((0, 0, 0, 1, 2, 3))))
    shape = tuple(d + amounts[i] + amounts[x.rank + i] for i, d in enumerate(x.shape))
    if not b.fits(shape):
        return False
    if x.dtype == "bool":
        value = r.choice((None, "0", "1"))
    elif x.dtype in INTS:
        value = r.choice((None, "0", "7", "-3"))
    else:
        value = r.choice((None, "0.0", "1.5", "-inf", "nan", "-2.5"))
    args = "[" + dims_text(b, amounts) + "]" + kwargs([("value", value)])
    b.emit("pad", method_or_call(b, "pad", x, args), [x], [(x.dtype, shape)], x.exact)
    return True


@register("gather")
def gather(b: Builder) -> bool:
    r = b.rng
    table = b.operand(
        b.kinds(ALL), lambda v: 1 <= v.rank <= 3, shape=lambda: b.rand_shape(r.randint(1, 3))
    )
    axis = r.randrange(table.rank)
    d = table.shape[axis]
    # an axis of run-time size B >= 1 takes only -1 and 0 for sure
    lo, hi = (-d.c, d.c) if d.known else (-1, 1)

    def fits(v: Val) -> bool:
        return (
            v.dtype in INTS
            and v.range is not None
            and lo <= v.range[0]
            and v.range[1] <= hi
            and v.rank <= 2
        )

    ids = b.pick(fits, fresh=0.4)
    if ids is None:
        shape = b.rand_shape(r.choice((0, 1, 1, 2)), batch_first=False)
        ids = b.new_input(r.choice(INTS), shape, (r.choice((lo, 0)), hi))
    shape = table.shape[:axis] + ids.shape + table.shape[axis + 1 :]
    if not b.fits(shape):
        return False
    form = r.random()
    if axis <= 1 and form < 0.4:
        expr = f"{table.name}[{':, ' * axis}{ids.name}]"
    elif form < 0.6:
        expr = f"{table.name}.gather({ids.name}, axis={axis})"
    else:
        expr = f"gather({table.name}, {ids.name}{kwargs([('axis', str(axis) if axis else None)])})"
    b.emit("gather", expr, [table, ids], [(table.dtype, shape)], table.exact, table.range)
    return True
