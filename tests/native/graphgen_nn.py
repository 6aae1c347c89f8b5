"""Random applications of conv, max_pool, avg_pool and of standard-library layers (Dense,
LayerNorm, softmax, Conv2d, ...): `Builder` -> one more statement (True), or False.

Windows are drawn until they fit (every output size at least 1); pool paddings stay within
half the kernel, as the primitives require. Inputs are [N, C, *S] with known C and S (N
may be the batch symbol).
"""

from __future__ import annotations

from collections.abc import Callable

from graphgen import FLOATS, HALVES, Builder, Dim, Shape, Val, avoid, const, kwargs

NN: dict[str, Callable[[Builder], bool]] = {}


def register(name: str) -> Callable[[Callable[[Builder], bool]], Callable[[Builder], bool]]:
    def wrap(fn: Callable[[Builder], bool]) -> Callable[[Builder], bool]:
        NN[name] = fn
        return fn

    return wrap


# --- convolution and pooling ---------------------------------------------------------------


def window_input(b: Builder, spatial: int, calm: bool, coarse: bool = False) -> Val:
    """A float [N, C, *S] operand with known C and S; `calm`: no huge values (for sums);
    `coarse`: f16/bf16 only if coarse (Builder.operand)."""

    def fits(v: Val) -> bool:
        return (
            v.dtype in b.kinds(FLOATS)
            and b.fits_flags(v, calm=calm, coarse=coarse)
            and v.rank == 2 + spatial
            and all(d.known for d in v.shape[1:])
        )

    found = b.pick(fits)
    if found is not None:
        return found
    r = b.rng
    n = Dim(1, 0) if b.use_batch and r.random() < 0.5 else const(r.choice((1, 2, 3)))
    c = r.choice((1, 2, 3, 4, 6))
    sizes = [const(r.choice((3, 4, 5, 7, 9))) for _ in range(spatial)]
    return b.new_input(r.choice(b.kinds(FLOATS)), (n, const(c), *sizes), calm=calm, coarse=coarse)


def geometry(b: Builder, values: list[int], broadcastable: bool = True) -> str:
    """An int for all axes when they agree (sometimes), else a list."""
    if broadcastable and len(set(values)) == 1 and b.rng.random() < 0.6:
        return str(values[0])
    return "[" + ", ".join(map(str, values)) + "]"


def out_size(size: int, lo: int, hi: int, kernel: int, stride: int, dilation: int) -> int:
    return (size + lo + hi - dilation * (kernel - 1) - 1) // stride + 1


def padding_text(b: Builder, lo: list[int], hi: list[int]) -> str | None:
    if lo == hi:
        return None if not any(lo) and b.rng.random() < 0.5 else geometry(b, lo)
    return "[" + ", ".join(map(str, lo + hi)) + "]"


@register("conv")
def conv(b: Builder) -> bool:
    r = b.rng
    spatial = r.choice((1, 2))
    x = window_input(b, spatial, calm=True, coarse=True)
    c = x.shape[1].c
    groups = r.choice([g for g in range(1, c + 1) if c % g == 0])
    o = groups * r.choice((1, 2, 3))
    sizes = [d.c for d in x.shape[2:]]
    for _ in range(10):
        kernel = [r.choice((1, 2, 3)) for _ in sizes]
        stride = [r.choice((1, 1, 2, 3)) for _ in sizes]
        dilation = [r.choice((1, 1, 2)) for _ in sizes]
        lo = [r.choice((0, 0, 1, 2)) for _ in sizes]
        hi = lo if r.random() < 0.6 else [r.choice((0, 1, 2)) for _ in sizes]
        outs = [out_size(*a) for a in zip(sizes, lo, hi, kernel, stride, dilation, strict=True)]
        if min(outs) >= 1:
            break
    else:
        return False
    w_shape = (const(o), const(c // groups), *map(const, kernel))
    w = b.new_operand(x.dtype, w_shape, weight=0.6, calm=True, coarse=True)
    args = kwargs(
        [
            ("stride", None if stride == [1] * spatial else geometry(b, stride)),
            ("padding", padding_text(b, lo, hi)),
            ("dilation", None if dilation == [1] * spatial else geometry(b, dilation)),
            ("groups", None if groups == 1 else str(groups)),
        ]
    )
    shape = (x.shape[0], const(o), *map(const, outs))
    exact = x.dtype in HALVES  # coarse: exact sums
    b.emit("conv", f"conv({x.name}, {w.name}{args})", [x, w], [(x.dtype, shape)], exact)
    return True


def pool(b: Builder, name: str) -> bool:
    r = b.rng
    x = window_input(b, r.choice((1, 2)), calm=name == "avg_pool")
    sizes = [d.c for d in x.shape[2:]]
    for _ in range(10):
        kernel = [r.randint(1, min(3, s)) for s in sizes]
        stride = [r.choice((1, 2, 3)) for _ in sizes]
        dilation = [r.choice((1, 1, 2)) for _ in sizes] if name == "max_pool" else [1] * len(sizes)
        lo = [r.randint(0, k // 2) for k in kernel]
        hi = lo if r.random() < 0.6 else [r.randint(0, k // 2) for k in kernel]
        outs = [out_size(*a) for a in zip(sizes, lo, hi, kernel, stride, dilation, strict=True)]
        if min(outs) >= 1:
            break
    else:
        return False
    items = [
        ("stride", None if stride == kernel and r.random() < 0.5 else geometry(b, stride)),
        ("padding", padding_text(b, lo, hi)),
    ]
    if name == "max_pool":
        items.append(("dilation", None if dilation == [1] * len(sizes) else geometry(b, dilation)))
    elif r.random() < 0.5:
        items.append(("count_include_pad", r.choice(("true", "false"))))
    args = f"kernel={geometry(b, kernel)}" if r.random() < 0.5 else geometry(b, kernel)
    expr = f"{name}({x.name}, {args}{kwargs(items)})"
    shape = (x.shape[0], x.shape[1], *map(const, outs))
    zsign = True if name == "max_pool" and avoid("signed-zero-max-min") else None
    # avg_pool of f16/bf16 sums in f32 in the reference's order: the same bits
    exact = x.exact and (name == "max_pool" or x.dtype in HALVES)
    b.emit(name, expr, [x], [(x.dtype, shape)], exact, zsign=zsign)
    return True


NN["max_pool"] = lambda b: pool(b, "max_pool")
NN["avg_pool"] = lambda b: pool(b, "avg_pool")


# --- standard-library layers (f32 only): composite graphs with weights ---------------------


@register("nn")
def stdlib_layer(b: Builder) -> bool:
    r = b.rng
    kind = r.choice(("Dense", "LayerNorm", "RMSNorm", "softmax", "log_softmax", "act", "Conv2d"))
    if kind == "Conv2d":
        x = window_input(b, 2, calm=True)
        if x.dtype != "f32":
            return False
        c, h, w = (d.c for d in x.shape[1:])
        k = r.randint(1, min(3, h, w))
        out, pad_ = r.choice((1, 2, 4)), r.randint(0, 1)
        shape: Shape = (
            x.shape[0],
            const(out),
            const(h + 2 * pad_ - k + 1),
            const(w + 2 * pad_ - k + 1),
        )
        layer = f"nn.Conv2d[{c}, {out}, {k}, padding={pad_}]"
    else:
        x = b.operand(
            ("f32",),
            lambda v: v.rank >= 1 and v.shape[-1].known,
            shape=lambda: b.rand_shape(r.randint(1, 3), batch_first=True),
            calm=True,  # layer norms and softmaxes sum
        )
        if not x.shape or not x.shape[-1].known:
            return False
        d = x.shape[-1].c
        shape = x.shape
        if kind == "Dense":
            out = b.size()
            shape = x.shape[:-1] + (const(out),)
            layer = f"nn.Dense[{d}, {out}{', bias=false' if r.random() < 0.3 else ''}]"
        elif kind in ("LayerNorm", "RMSNorm"):
            layer = f"nn.{kind}[{d}]"
        else:
            fn = r.choice(("relu", "gelu", "gelu_tanh", "silu")) if kind == "act" else kind
            axis = f"[axis={r.randrange(x.rank)}]" if kind != "act" and r.random() < 0.5 else ""
            b.imports.add("nn")
            b.emit("nn", f"nn.{fn}{axis}({x.name})", [x], [("f32", shape)], False)
            return True
    b.imports.add("nn")
    name = b.fresh("layer")
    b.statement(f"let {name} = {layer}", (name,), (), "nn")
    b.emit("nn", f"{name}({x.name})", [x], [("f32", shape)], False, extra_uses=(name,))
    return True
