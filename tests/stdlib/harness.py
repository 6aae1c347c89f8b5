"""Helpers for the stdlib tests: wrapper-model sources, random weights, comparisons.

A wrapper is a one-model .mdl file that binds one stdlib layer as `m` (so its
weights are `m.weight`, `m.attn.qkv.bias`, ...) or calls one stdlib fn, with
input and output types written out in full.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]
STDLIB = REPO / "stdlib"
EXAMPLES = REPO / "examples"
TORCH_FIXTURES = REPO / "tests" / "fixtures" / "torch"

# The binding name wrappers give the layer under test; weights keys start with it.
LAYER = "m"


def dims_text(shape: tuple[int, ...], batch: str | None = "B") -> str:
    """(3, 12) -> `B, 12`: the first axis symbolic (the model's dynamic dim) unless batch is None."""
    items = [str(d) for d in shape]
    if batch is not None and items:
        items[0] = batch
    return ", ".join(items)


def layer_source(
    layer: str,
    in_shape: tuple[int, ...],
    out_shape: tuple[int, ...],
    *,
    imports: str = "import nn",
    in_type: str | None = None,
) -> str:
    """A model that applies one instance of `layer` (e.g. `nn.Dense[12, 7]`) to its input."""
    x_type = in_type or f"f32[{dims_text(in_shape)}]"
    return (
        f"{imports}\n\n"
        f"model Case(x: {x_type}) -> f32[{dims_text(out_shape)}] {{\n"
        f"    let {LAYER} = {layer}\n"
        f"    return {LAYER}(x)\n"
        f"}}\n"
    )


def fn_source(call: str, in_shape: tuple[int, ...], out_shape: tuple[int, ...]) -> str:
    """A model returning `call` (an expression of `x`, e.g. `nn.softmax[axis=1](x)`)."""
    return (
        "import nn\n\n"
        f"model Case(x: f32[{dims_text(in_shape)}]) -> f32[{dims_text(out_shape)}] {{\n"
        f"    return {call}\n"
        f"}}\n"
    )


def random_params(
    spec: Mapping[str, tuple[int, ...]], rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Weights for a state-dict layout, drawn so that no default value hides a bug.

    Like the torch fixtures: parameters N(0, 0.5^2); running variances in
    [0.5, 1.5] (they are divided by); `num_batches_tracked` an i64 scalar.
    """
    params: dict[str, np.ndarray] = {}
    for name, shape in spec.items():
        leaf = name.rsplit(".", 1)[-1]
        if leaf == "num_batches_tracked":
            params[name] = np.array(7, dtype=np.int64)
        elif leaf == "running_var":
            params[name] = rng.uniform(0.5, 1.5, shape).astype(np.float32)
        elif leaf == "running_mean":
            params[name] = rng.standard_normal(shape).astype(np.float32)
        else:
            params[name] = (0.5 * rng.standard_normal(shape)).astype(np.float32)
    return params


# ---------------------------------------------------------------- state-dict layouts
# name -> shape of each entry, as torch names them; `prefix` nests them (`bn1.`).

Spec = dict[str, tuple[int, ...]]


def conv_spec(out_c: int, in_per_group: int, kernel: tuple[int, ...], bias: bool = True) -> Spec:
    spec = {"weight": (out_c, in_per_group, *kernel)}
    return spec | {"bias": (out_c,)} if bias else spec


def bn_spec(c: int, prefix: str = "") -> Spec:
    names = ("weight", "bias", "running_mean", "running_var")
    spec = {f"{prefix}{n}": (c,) for n in names}
    return spec | {f"{prefix}num_batches_tracked": ()}


def dense_spec(in_f: int, out_f: int, prefix: str = "", bias: bool = True) -> Spec:
    spec = {f"{prefix}weight": (out_f, in_f)}
    return spec | {f"{prefix}bias": (out_f,)} if bias else spec


def block_spec(in_c: int, out_c: int, shortcut: bool) -> Spec:
    spec = {"conv1.weight": (out_c, in_c, 3, 3)} | bn_spec(out_c, "bn1.")
    spec |= {"conv2.weight": (out_c, out_c, 3, 3)} | bn_spec(out_c, "bn2.")
    if shortcut:
        spec |= {"shortcut.0.weight": (out_c, in_c, 1, 1)} | bn_spec(out_c, "shortcut.1.")
    return spec


def attention_spec(d: int, prefix: str = "") -> Spec:
    return dense_spec(d, 3 * d, f"{prefix}qkv.") | dense_spec(d, d, f"{prefix}proj.")


def mlp_spec(d: int, hidden: int, prefix: str = "") -> Spec:
    return dense_spec(d, hidden, f"{prefix}fc.") | dense_spec(hidden, d, f"{prefix}proj.")


def ln_spec(d: int, prefix: str) -> Spec:
    return {f"{prefix}weight": (d,), f"{prefix}bias": (d,)}


def gpt_block_spec(d: int) -> Spec:
    spec = ln_spec(d, "ln1.") | attention_spec(d, "attn.") | ln_spec(d, "ln2.")
    return spec | mlp_spec(d, 4 * d, "mlp.")


def gpt_spec(vocab: int, context: int, d: int, layers: int) -> Spec:
    spec = {"tok.weight": (vocab, d), "pos.weight": (context, d)}
    for i in range(layers):
        spec |= {f"blocks.{i}.{k}": v for k, v in gpt_block_spec(d).items()}
    return spec | ln_spec(d, "ln_f.") | dense_spec(d, vocab, "head.", bias=False)


def cifar_resnet_spec(blocks_per_stage: int) -> Spec:
    spec = {"conv1.weight": (16, 3, 3, 3)} | bn_spec(16, "bn1.")
    for stage, (in_c, out_c, stride) in enumerate(((16, 16, 1), (16, 32, 2), (32, 64, 2)), 1):
        for i in range(blocks_per_stage):
            c = in_c if i == 0 else out_c
            block = block_spec(c, out_c, shortcut=i == 0 and (stride != 1 or in_c != out_c))
            spec |= {f"layer{stage}.{i}.{k}": v for k, v in block.items()}
    return spec | dense_spec(64, 10, "fc.")


def prefixed(params: Mapping[str, np.ndarray], prefix: str = LAYER) -> dict[str, np.ndarray]:
    """Weights of the layer bound as `prefix` in a wrapper: `weight` -> `m.weight`."""
    return {f"{prefix}.{k}": v for k, v in params.items()}


def widen(x: np.ndarray) -> np.ndarray:
    """A float32 input as float64 (for the reference); integer ids unchanged."""
    return x.astype(np.float64) if x.dtype == np.float32 else x


def as_f64(params: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """float32 entries widened to float64 for an accurate reference; others unchanged."""
    return {k: widen(v) for k, v in params.items()}


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float, atol: float) -> None:
    """allclose with the absolute tolerance scaled by the output's magnitude (at least 1).

    Large outputs (deep layers with unscaled weights) carry absolute rounding
    errors proportional to their size, so a fixed atol would be meaningless there.
    """
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"shape {actual.shape} != {expected.shape}"
    assert actual.dtype == np.float32, f"dtype {actual.dtype}, expected float32"
    scale = max(1.0, float(np.abs(expected).max(initial=0.0)))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol * scale)


def write_source(directory: Path, text: str, name: str = "case.mdl") -> str:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return str(path)
