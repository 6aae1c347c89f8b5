"""Arrays + parameter dicts -> arrays: independent numpy versions of every stdlib layer.

Written from the math (and PyTorch's documented semantics), not from the mdl
sources, so the stdlib can be tested against them. Every function keeps the
dtype of its input: tests call them on float64 copies to get an accurate
reference. Layers take their parameters as a dict keyed like a torch state
dict (`weight`, `qkv.bias`, `shortcut.0.weight`); `sub` selects a child's.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence

import numpy as np

Params = Mapping[str, np.ndarray]

_erf = np.vectorize(math.erf, otypes=[np.float64])


def sub(params: Params, prefix: str) -> dict[str, np.ndarray]:
    """The entries of one child (`attn.`), with the prefix removed."""
    head = prefix + "."
    return {k[len(head) :]: v for k, v in params.items() if k.startswith(head)}


# ---------------------------------------------------------------- activations


def relu(x: np.ndarray) -> np.ndarray:
    return np.where(x > 0, x, np.zeros_like(x))


def gelu(x: np.ndarray) -> np.ndarray:
    """x * Phi(x), Phi the standard normal CDF."""
    cdf = 0.5 * (1.0 + _erf(x.astype(np.float64) / math.sqrt(2.0)))
    return (x * cdf.astype(x.dtype)).astype(x.dtype)


def gelu_tanh(x: np.ndarray) -> np.ndarray:
    c = math.sqrt(2.0 / math.pi)
    return (0.5 * x * (1.0 + np.tanh(c * (x + 0.044715 * x**3)))).astype(x.dtype)


def sigmoid(x: np.ndarray) -> np.ndarray:
    # exp of -|x| never overflows; the two branches are the same function.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e)).astype(x.dtype)


def silu(x: np.ndarray) -> np.ndarray:
    return x * sigmoid(x)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    m = x.max(axis=axis, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(axis=axis, keepdims=True))


# ---------------------------------------------------------------- linear and convolution


def dense(x: np.ndarray, p: Params) -> np.ndarray:
    """nn.Linear: weight [Out, In], optional bias [Out]."""
    y = np.einsum("...i,oi->...o", x, p["weight"])
    return y + p["bias"] if "bias" in p else y


def _as_tuple(value: int | Sequence[int], rank: int) -> tuple[int, ...]:
    return tuple(value) if isinstance(value, Sequence) else (value,) * rank


def conv(
    x: np.ndarray,
    weight: np.ndarray,
    bias: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
) -> np.ndarray:
    """N-d cross-correlation as torch's convNd: x [N, C, *spatial], weight [O, C/groups, *K].

    Sums one kernel tap at a time: the tap's strided view of the padded input
    times that tap's weights, per group.
    """
    rank = x.ndim - 2
    stride, padding, dilation = (_as_tuple(v, rank) for v in (stride, padding, dilation))
    n, c = x.shape[:2]
    out_c, c_per_group = weight.shape[:2]
    kernel = weight.shape[2:]
    assert c == c_per_group * groups and out_c % groups == 0
    padded = np.pad(x, [(0, 0), (0, 0)] + [(p, p) for p in padding])
    out_size = [
        (x.shape[2 + a] + 2 * padding[a] - dilation[a] * (kernel[a] - 1) - 1) // stride[a] + 1
        for a in range(rank)
    ]
    y = np.zeros((n, out_c, *out_size), dtype=np.result_type(x, weight))
    o_per_group = out_c // groups
    for tap in itertools.product(*(range(k) for k in kernel)):
        window = tuple(
            slice(
                tap[a] * dilation[a],
                tap[a] * dilation[a] + stride[a] * (out_size[a] - 1) + 1,
                stride[a],
            )
            for a in range(rank)
        )
        for g in range(groups):
            xs = padded[(slice(None), slice(g * c_per_group, (g + 1) * c_per_group), *window)]
            ws = weight[(slice(g * o_per_group, (g + 1) * o_per_group), slice(None), *tap)]
            y[:, g * o_per_group : (g + 1) * o_per_group] += np.einsum("nc...,oc->no...", xs, ws)
    if bias is not None:
        y += bias.reshape((out_c,) + (1,) * rank)
    return y


def conv_layer(x: np.ndarray, p: Params, **options: int) -> np.ndarray:
    """nn.Conv1d / nn.Conv2d with their state dict."""
    return conv(x, p["weight"], p.get("bias"), **options)


# ---------------------------------------------------------------- normalisation


def batch_norm(x: np.ndarray, p: Params, eps: float = 1e-5) -> np.ndarray:
    """Inference batch norm over axis 1 of [N, C, ...] with running statistics."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    mean = p["running_mean"].reshape(shape)
    var = p["running_var"].reshape(shape)
    return (x - mean) / np.sqrt(var + eps) * p["weight"].reshape(shape) + p["bias"].reshape(shape)


def layer_norm(x: np.ndarray, p: Params, eps: float = 1e-5) -> np.ndarray:
    mean = x.mean(axis=-1, keepdims=True)
    var = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    return (x - mean) / np.sqrt(var + eps) * p["weight"] + p["bias"]


def rms_norm(x: np.ndarray, p: Params, eps: float = 1e-6) -> np.ndarray:
    return x / np.sqrt((x**2).mean(axis=-1, keepdims=True) + eps) * p["weight"]


# ---------------------------------------------------------------- lookup, pooling, reshaping


def embedding(ids: np.ndarray, p: Params) -> np.ndarray:
    return p["weight"][ids]


def _pool_windows(padded: np.ndarray, kernel: int, stride: int, out_h: int, out_w: int):
    for i, j in itertools.product(range(kernel), repeat=2):
        yield padded[
            :,
            :,
            i : i + stride * (out_h - 1) + 1 : stride,
            j : j + stride * (out_w - 1) + 1 : stride,
        ]


def _pool_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def max_pool2d(
    x: np.ndarray, kernel: int, stride: int | None = None, padding: int = 0
) -> np.ndarray:
    stride = kernel if stride is None else stride
    out_h, out_w = (_pool_out(s, kernel, stride, padding) for s in x.shape[2:])
    pads = [(0, 0), (0, 0), (padding, padding), (padding, padding)]
    padded = np.pad(x, pads, constant_values=-np.inf)
    return np.stack(list(_pool_windows(padded, kernel, stride, out_h, out_w))).max(axis=0)


def avg_pool2d(
    x: np.ndarray,
    kernel: int,
    stride: int | None = None,
    padding: int = 0,
    count_include_pad: bool = True,
) -> np.ndarray:
    stride = kernel if stride is None else stride
    out_h, out_w = (_pool_out(s, kernel, stride, padding) for s in x.shape[2:])
    pads = [(0, 0), (0, 0), (padding, padding), (padding, padding)]
    total = sum(_pool_windows(np.pad(x, pads), kernel, stride, out_h, out_w))
    if count_include_pad:
        return total / (kernel * kernel)
    inside = np.pad(np.ones_like(x), pads)
    return total / sum(_pool_windows(inside, kernel, stride, out_h, out_w))


def global_avg_pool(x: np.ndarray) -> np.ndarray:
    return x.mean(axis=(2, 3))


def flatten(x: np.ndarray) -> np.ndarray:
    return x.reshape(x.shape[0], -1)


# ---------------------------------------------------------------- transformer


def causal_self_attention(x: np.ndarray, p: Params, heads: int) -> np.ndarray:
    batch, steps, dim = x.shape
    head_dim = dim // heads
    qkv = dense(x, sub(p, "qkv"))
    q, k, v = (
        qkv[..., i * dim : (i + 1) * dim]
        .reshape(batch, steps, heads, head_dim)
        .transpose(0, 2, 1, 3)
        for i in range(3)
    )
    scores = np.einsum("bhtd,bhsd->bhts", q, k) / math.sqrt(head_dim)
    future = np.triu(np.ones((steps, steps), dtype=bool), k=1)
    scores = np.where(future, -np.inf, scores)
    out = np.einsum("bhts,bhsd->bhtd", softmax(scores), v)
    return dense(out.transpose(0, 2, 1, 3).reshape(batch, steps, dim), sub(p, "proj"))


def mlp(x: np.ndarray, p: Params) -> np.ndarray:
    return dense(gelu(dense(x, sub(p, "fc"))), sub(p, "proj"))


def gpt_block(x: np.ndarray, p: Params, heads: int) -> np.ndarray:
    x = x + causal_self_attention(layer_norm(x, sub(p, "ln1")), sub(p, "attn"), heads)
    return x + mlp(layer_norm(x, sub(p, "ln2")), sub(p, "mlp"))


def gpt(ids: np.ndarray, p: Params, heads: int, layers: int) -> np.ndarray:
    steps = ids.shape[1]
    x = embedding(ids, sub(p, "tok")) + embedding(np.arange(steps), sub(p, "pos"))
    for i in range(layers):
        x = gpt_block(x, sub(p, f"blocks.{i}"), heads)
    return dense(layer_norm(x, sub(p, "ln_f")), sub(p, "head"))


# ---------------------------------------------------------------- resnet


def basic_block(x: np.ndarray, p: Params, stride: int = 1) -> np.ndarray:
    """The projection shortcut is used exactly when its weights are present."""
    y = relu(batch_norm(conv(x, p["conv1.weight"], stride=stride, padding=1), sub(p, "bn1")))
    y = batch_norm(conv(y, p["conv2.weight"], padding=1), sub(p, "bn2"))
    if "shortcut.0.weight" in p:
        residual = conv(x, p["shortcut.0.weight"], stride=stride)
        residual = batch_norm(residual, sub(p, "shortcut.1"))
    else:
        residual = x
    return relu(y + residual)


def cifar_resnet(x: np.ndarray, p: Params, blocks_per_stage: int) -> np.ndarray:
    """CIFAR ResNet-(6n+2): conv1, bn1, layer1..3 of n basic blocks, global pool, fc."""
    h = relu(batch_norm(conv(x, p["conv1.weight"], padding=1), sub(p, "bn1")))
    for stage, first_stride in ((1, 1), (2, 2), (3, 2)):
        for i in range(blocks_per_stage):
            h = basic_block(h, sub(p, f"layer{stage}.{i}"), first_stride if i == 0 else 1)
    return dense(global_avg_pool(h), sub(p, "fc"))
