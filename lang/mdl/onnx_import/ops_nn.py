"""ONNX Conv, pooling and normalisation nodes -> mdl primitives (the general case).

patterns.py turns the common forms (weights given as initializers, square
kernels, f32) into standard layers; what it leaves comes here and is written
with `conv`, `max_pool`, `avg_pool` and arithmetic, with raw parameters.
Geometry mdl cannot express (ceil_mode that changes the size, pads past half
the kernel in pooling, 3-D convolutions) is E1007.
"""

from __future__ import annotations

from ..dims import Dim
from ..types import DType, TensorType
from .convert import Ctx, Node, scalar_text
from .ir import Expr, ex, hole
from .ops import axis_of, op, operands


class Geometry:
    """Window geometry of a Conv or pool node, checked, with the output spatial dims."""

    def __init__(self, c: Ctx, n: Node, spatial: tuple, kernel: list[int], dilated: bool = True):
        rank = len(spatial)
        self.kernel = kernel
        self.strides = [int(s) for s in n.attrs.get("strides", [1] * rank)]
        self.dilations = [int(d) for d in n.attrs.get("dilations", [1] * rank)]
        pads = [int(p) for p in n.attrs.get("pads", [0] * (2 * rank))]
        if not dilated and any(d != 1 for d in self.dilations):
            c.unsupported("dilations other than 1 are not supported")
        if len(kernel) != rank or len(self.strides) != rank or len(self.dilations) != rank:
            c.fail("E1011", f"window attributes do not match the {rank} spatial axes")
        if len(pads) != 2 * rank or min(pads) < 0 or min(self.strides) < 1:
            c.fail("E1011", f"invalid pads {pads} or strides {self.strides}")
        auto = n.attrs.get("auto_pad", "NOTSET")
        if auto in ("SAME_UPPER", "SAME_LOWER"):
            pads = [0] * (2 * rank)
            for i, size in enumerate(spatial):
                if not Dim.of(size).is_const:
                    c.unsupported(f"auto_pad={auto} on a symbolic spatial dim is not supported")
                s, k, d = self.strides[i], kernel[i], self.dilations[i]
                total = max(0, (-(-int(size) // s) - 1) * s + (k - 1) * d + 1 - int(size))
                small, large = total // 2, total - total // 2
                pads[i], pads[rank + i] = (small, large) if auto == "SAME_UPPER" else (large, small)
        elif auto == "VALID":
            pads = [0] * (2 * rank)
        elif auto != "NOTSET":
            c.unsupported(f"auto_pad=`{auto}` is not supported")
        self.pads = pads
        self.out: list[Dim] = []
        for i, size in enumerate(spatial):
            extent = (
                Dim.of(size) + pads[i] + pads[rank + i] - self.dilations[i] * (kernel[i] - 1) - 1
            )
            self.out.append(extent.floordiv(self.strides[i]) + 1)
            if extent.is_const and int(extent) < 0:
                c.fail("E1010", f"the window does not fit axis {i + 2} of size {size}")
        if n.attrs.get("ceil_mode", 0):
            for i, size in enumerate(spatial):
                extent = (
                    Dim.of(size)
                    + pads[i]
                    + pads[rank + i]
                    - self.dilations[i] * (kernel[i] - 1)
                    - 1
                )
                if not extent.is_const or int(extent) % self.strides[i]:
                    c.unsupported("ceil_mode=1 is supported only where it rounds nothing")

    def padding_text(self) -> str | None:
        rank = len(self.kernel)
        begin, end = self.pads[:rank], self.pads[rank:]
        if begin != end:
            return f"[{', '.join(map(str, self.pads))}]"
        if len(set(begin)) == 1:
            return None if begin[0] == 0 else str(begin[0])
        return f"[{', '.join(map(str, begin))}]"

    @staticmethod
    def ints(values: list[int], default: int) -> str | None:
        if all(v == default for v in values):
            return None
        return str(values[0]) if len(set(values)) == 1 else f"[{', '.join(map(str, values))}]"


def keywords(**items: str | None) -> str:
    return "".join(f", {k}={v}" for k, v in items.items() if v is not None)


@op("Conv", attrs="auto_pad dilations group kernel_shape pads strides")
def _conv(c: Ctx, n: Node) -> None:
    tx, tw = c.type_of(n.inputs[0]), c.type_of(n.inputs[1])
    if tx.rank not in (3, 4) or tw.rank != tx.rank:
        c.unsupported(f"a {tx.rank - 2}-D convolution is not supported (mdl has 1-D and 2-D)")
    if not tx.dtype.is_float:
        c.fail("E1008", f"Conv on `{tx.dtype}` is not supported")
    kernel = [int(k) for k in tw.shape[2:]]
    if "kernel_shape" in n.attrs and list(n.attrs["kernel_shape"]) != kernel:
        c.fail(
            "E1011", f"kernel_shape {n.attrs['kernel_shape']} differs from the weight's {kernel}"
        )
    geo = Geometry(c, n, tx.shape[2:], kernel)
    groups = int(n.attrs.get("group", 1))
    x, w = c.arg(n.inputs[0]), c.arg(n.inputs[1])
    kw = keywords(stride=geo.ints(geo.strides, 1), padding=geo.padding_text(),
                  dilation=geo.ints(geo.dilations, 1), groups=str(groups) if groups != 1 else None)  # fmt: skip
    e = ex(f"conv({{}}, {{}}{kw})", x, w)
    out = Dim.of(tw.shape[0])
    if len(n.inputs) > 2 and n.inputs[2]:
        b = c.arg(n.inputs[2])
        ones = ", 1" * (tx.rank - 2)
        e = ex(f"{{}} + {{}}.reshape({out}{ones})", e, b)
    c.emit(n.outputs[0], e, TensorType(tx.dtype, (tx.shape[0], out, *geo.out)), "conv")


@op("MaxPool", "AveragePool",
    attrs="auto_pad ceil_mode dilations kernel_shape pads storage_order strides count_include_pad")  # fmt: skip
def _pool(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    if len(n.outputs) > 1 and n.outputs[1]:
        c.unsupported("MaxPool's Indices output is not supported")
    if n.attrs.get("storage_order", 0):
        c.unsupported("storage_order=1 is not supported")
    if t.rank not in (3, 4) or not t.dtype.is_float:
        c.unsupported(f"pooling a {t.dtype} tensor of rank {t.rank} is not supported")
    kernel = [int(k) for k in n.attrs.get("kernel_shape", [])]
    geo = Geometry(c, n, t.shape[2:], kernel, dilated=n.op == "MaxPool")
    rank = len(kernel)
    if any(geo.pads[i] > kernel[i % rank] // 2 for i in range(2 * rank)):
        c.unsupported("pads above half the kernel are not supported in pooling",
                      help="mdl follows PyTorch's rule: pad with an explicit Pad node first")  # fmt: skip
    stride = None if geo.strides == kernel else geo.ints(geo.strides, -1)
    k = str(kernel[0]) if len(set(kernel)) == 1 else f"[{', '.join(map(str, kernel))}]"
    if n.op == "MaxPool":
        kw = keywords(
            stride=stride, padding=geo.padding_text(), dilation=geo.ints(geo.dilations, 1)
        )
        e = ex(f"max_pool({{}}, {k}{kw})", x)
    else:
        include = bool(n.attrs.get("count_include_pad", 0))
        padded = any(geo.pads)
        kw = keywords(stride=stride, padding=geo.padding_text(),
                      count_include_pad="false" if padded and not include else None)  # fmt: skip
        e = ex(f"avg_pool({{}}, {k}{kw})", x)
    c.emit(n.outputs[0], e, TensorType(t.dtype, (*t.shape[:2], *geo.out)), "pool")


@op("GlobalAveragePool", "GlobalMaxPool")
def _global_pool(c: Ctx, n: Node) -> None:
    (x,), (t,) = operands(c, n.inputs)
    if t.rank < 3:
        c.fail("E1011", f"{n.op} needs a tensor of rank 3 or more")
    axes = ", ".join(str(i) for i in range(2, t.rank))
    fn = "mean" if n.op == "GlobalAveragePool" else "max"
    e = ex(f"{fn}({{}}, axis=[{axes}], keep=true)", x)
    c.emit(
        n.outputs[0], e, TensorType(t.dtype, (*t.shape[:2], *[Dim.of(1)] * (t.rank - 2))), "pool"
    )


def _channel(c: Ctx, e: Expr, channels: Dim, rank: int) -> Expr:
    """A per-channel vector shaped to broadcast over axis 1 of a rank-`rank` tensor."""
    if rank <= 2:
        return e
    return ex(f"{{}}.reshape({channels}{', 1' * (rank - 2)})", e)


@op("BatchNormalization", attrs="epsilon momentum training_mode")
def _batch_norm(c: Ctx, n: Node) -> None:
    if n.attrs.get("training_mode", 0) or any(o for o in n.outputs[1:]):
        c.unsupported("BatchNormalization in training mode is not supported")
    t = c.type_of(n.inputs[0])
    if t.rank < 2:
        c.fail("E1011", "BatchNormalization needs a tensor of rank 2 or more")
    x, scale, bias, mean, var = (c.arg(i) for i in n.inputs[:5])
    eps = scalar_text(n.attrs.get("epsilon", 1e-5), t.dtype)
    ch = Dim.of(t.shape[1])
    factor = ex(f"{{}} * rsqrt({{}} + {eps})", scale, var)
    e = ex("({} - {}) * {} + {}", x, _channel(c, mean, ch, t.rank), _channel(c, factor, ch, t.rank),
           _channel(c, bias, ch, t.rank))  # fmt: skip
    c.emit(n.outputs[0], e, t, "norm")


@op("LayerNormalization", "RMSNormalization", attrs="axis epsilon stash_type")
def _layer_norm(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    if not t.dtype.is_float:
        c.fail("E1008", f"{n.op} on `{t.dtype}` is not supported")
    if any(o for o in n.outputs[1:]) and t.dtype is not DType.F32:
        c.unsupported(f"{n.op}'s statistics outputs are supported for f32 only")
    axis = axis_of(c, int(n.attrs.get("axis", -1)), t.rank)
    axes = list(range(axis, t.rank))
    axis_text = str(axes[0]) if len(axes) == 1 else f"[{', '.join(map(str, axes))}]"
    eps = scalar_text(n.attrs.get("epsilon", 1e-5), t.dtype)
    x = c.arg(n.inputs[0])
    out = n.outputs[0]
    extra = [*n.outputs[1:], "", ""]
    kept = TensorType(t.dtype, tuple(Dim.of(1) if i >= axis else d for i, d in enumerate(t.shape)))
    if n.op == "LayerNormalization":
        mean_v = extra[0] or f"{out}\x00mean"
        c.emit(mean_v, ex(f"mean({{}}, axis={axis_text}, keep=true)", x), kept, "mean")
        centered = f"{out}\x00centered"
        c.emit(centered, ex("{} - {}", x, _h(mean_v)), t, "centered")
        x = _h(centered)
    inv = extra[1] if n.op == "LayerNormalization" and extra[1] else f"{out}\x00inv"
    e = ex(f"rsqrt(mean({{}} * {{}}, axis={axis_text}, keep=true) + {eps})", x, x)
    c.emit(inv, e, kept, "inv")
    e = ex("{} * {}", x, _h(inv))
    if len(n.inputs) > 1 and n.inputs[1]:
        e = ex("{} * {}", e, c.arg(n.inputs[1], literal_rank=0))
    if len(n.inputs) > 2 and n.inputs[2]:
        e = ex("{} + {}", e, c.arg(n.inputs[2], literal_rank=0))
    c.emit(out, e, t, "norm")


def _h(name: str) -> Expr:
    return hole(name)


@op("InstanceNormalization", attrs="epsilon")
def _instance_norm(c: Ctx, n: Node) -> None:
    t = c.type_of(n.inputs[0])
    if t.rank < 3 or not t.dtype.is_float:
        c.fail("E1011", "InstanceNormalization needs a float tensor of rank 3 or more")
    axes = f"[{', '.join(str(i) for i in range(2, t.rank))}]"
    x, scale, bias = (c.arg(i) for i in n.inputs[:3])
    eps = scalar_text(n.attrs.get("epsilon", 1e-5), t.dtype)
    out = n.outputs[0]
    centered, var = f"{out}\x00centered", f"{out}\x00var"
    c.emit(centered, ex(f"{{}} - mean({{}}, axis={axes}, keep=true)", x, x), t, "centered")
    kept = TensorType(t.dtype, (*t.shape[:2], *[Dim.of(1)] * (t.rank - 2)))
    c.emit(var, ex(f"mean({{}} * {{}}, axis={axes}, keep=true)", _h(centered), _h(centered)), kept,
           "var")  # fmt: skip
    ch = Dim.of(t.shape[1])
    e = ex(f"{{}} * rsqrt({{}} + {eps}) * {{}} + {{}}", _h(centered), _h(var),
           _channel(c, scale, ch, t.rank), _channel(c, bias, ch, t.rank))  # fmt: skip
    c.emit(out, e, t, "norm")
