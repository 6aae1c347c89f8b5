"""The example models: initialise, load, run on their sample inputs, match numpy.

For each examples/<name>.mdl: `mdl.api.init_weights(path, seed=0)` gives the
weights its initialisers declare (checked against the PyTorch layout and
PyTorch's default initialisation), `mdl.load(..., backend="ref")` runs it on
examples/inputs/<name>.npy, and the outputs are compared with a numpy
composition of numpy_ref.py (rtol 1e-5, atol 1e-6 * max(1, max |expected|)).
The digits model with its trained weights must classify >= 95% of
examples/digits_test.npz correctly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy_ref as ref
import pytest
from harness import (
    EXAMPLES,
    as_f64,
    assert_close,
    cifar_resnet_spec,
    conv_spec,
    dense_spec,
    gpt_spec,
    widen,
)

import mdl

RTOL = 1e-5
ATOL = 1e-6
SEED = 0


def lenet_reference(x: np.ndarray, p: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    h = ref.max_pool2d(ref.relu(ref.conv_layer(x, ref.sub(p, "conv1"), padding=2)), 2)
    h = ref.max_pool2d(ref.relu(ref.conv_layer(h, ref.sub(p, "conv2"))), 2)
    h = ref.relu(ref.dense(ref.flatten(h), ref.sub(p, "fc1")))
    h = ref.relu(ref.dense(h, ref.sub(p, "fc2")))
    logits = ref.dense(h, ref.sub(p, "fc3"))
    return logits, ref.softmax(logits)


def perceptron_reference(x: np.ndarray, p: dict[str, np.ndarray]) -> np.ndarray:
    """fc1, fc2, ... with relu between them and softmax at the end."""
    layers = sorted({k.split(".")[0] for k in p})
    for name in layers[:-1]:
        x = ref.relu(ref.dense(x, ref.sub(p, name)))
    return ref.softmax(ref.dense(x, ref.sub(p, layers[-1])))


@dataclass(frozen=True)
class Example:
    name: str
    layout: dict[str, tuple[int, ...]]
    output_shapes: tuple[tuple[int, ...], ...]
    reference: Callable
    probabilities: tuple[bool, ...]  # which outputs are softmax rows


EXAMPLE_CASES = [
    Example(
        "digits",
        dense_spec(64, 32, "fc1.") | dense_spec(32, 10, "fc2."),
        ((2, 10),),
        perceptron_reference,
        (True,),
    ),
    Example(
        "mlp",
        dense_spec(784, 512, "fc1.") | dense_spec(512, 256, "fc2.") | dense_spec(256, 10, "fc3."),
        ((2, 10),),
        perceptron_reference,
        (True,),
    ),
    Example(
        "lenet",
        {f"conv1.{k}": v for k, v in conv_spec(6, 1, (5, 5)).items()}
        | {f"conv2.{k}": v for k, v in conv_spec(16, 6, (5, 5)).items()}
        | dense_spec(400, 120, "fc1.")
        | dense_spec(120, 84, "fc2.")
        | dense_spec(84, 10, "fc3."),
        ((2, 10), (2, 10)),
        lenet_reference,
        (False, True),
    ),
    Example(
        "resnet20",
        cifar_resnet_spec(blocks_per_stage=3),
        ((2, 10),),
        lambda x, p: ref.cifar_resnet(x, p, blocks_per_stage=3),
        (False,),
    ),
    Example(
        "gpt",
        gpt_spec(vocab=512, context=64, d=256, layers=4),
        ((2, 64, 512),),
        lambda ids, p: ref.gpt(ids, p, heads=4, layers=4),
        (False,),
    ),
]


def source(name: str) -> str:
    return str(EXAMPLES / f"{name}.mdl")


def init_weights(name: str, seed: int = SEED) -> dict[str, np.ndarray]:
    from mdl.api import init_weights as init

    return init(source(name), seed=seed)


def sample_input(name: str) -> np.ndarray:
    return np.load(EXAMPLES / "inputs" / f"{name}.npy")


def outputs_tuple(result) -> tuple[np.ndarray, ...]:
    return tuple(result) if isinstance(result, tuple) else (result,)


@pytest.mark.parametrize("example", EXAMPLE_CASES, ids=lambda e: e.name)
def test_initial_weights_have_the_pytorch_layout(example: Example) -> None:
    weights = init_weights(example.name)
    assert {k: tuple(v.shape) for k, v in weights.items()} == example.layout
    for key, value in weights.items():
        expected = np.int64 if key.endswith("num_batches_tracked") else np.float32
        assert value.dtype == expected, key


@pytest.mark.parametrize("example", EXAMPLE_CASES, ids=lambda e: e.name)
def test_example_runs_on_its_sample_input(example: Example) -> None:
    weights = init_weights(example.name)
    x = sample_input(example.name)
    model = mdl.load(source(example.name), weights=weights, backend="ref")
    outputs = outputs_tuple(model(x))
    assert tuple(o.shape for o in outputs) == example.output_shapes
    for out, is_probability in zip(outputs, example.probabilities, strict=True):
        assert out.dtype == np.float32
        assert np.isfinite(out).all()
        if is_probability:
            assert (out >= 0).all()
            np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-5)
    expected = outputs_tuple(example.reference(widen(x), as_f64(weights)))
    for actual, want in zip(outputs, expected, strict=True):
        assert_close(actual, want, RTOL, ATOL)


def test_lenet_names_its_outputs() -> None:
    model = mdl.load(source("lenet"), weights=init_weights("lenet"), backend="ref")
    assert list(model.output_names) == ["logits", "probs"]


def test_init_is_reproducible_and_seeded() -> None:
    first, again, other = init_weights("mlp", 0), init_weights("mlp", 0), init_weights("mlp", 1)
    assert all(np.array_equal(first[k], again[k]) for k in first)
    assert not np.array_equal(first["fc1.weight"], other["fc1.weight"])


def _assert_uniform(values: np.ndarray, bound: float) -> None:
    """Uniform in [-bound, bound]: inside it, filling it, with the uniform's std."""
    assert np.abs(values).max() <= bound
    assert np.abs(values).max() > 0.9 * bound
    assert abs(values.std() - bound / math.sqrt(3)) < 0.05 * bound


def test_init_follows_pytorch_defaults_for_dense() -> None:
    w = init_weights("mlp")
    for name, fan_in in (("fc1", 784), ("fc2", 512), ("fc3", 256)):
        # kaiming_uniform(a = sqrt(5)) and the torch bias rule both give +-1/sqrt(fan_in)
        _assert_uniform(w[f"{name}.weight"], 1 / math.sqrt(fan_in))
        assert np.abs(w[f"{name}.bias"]).max() <= 1 / math.sqrt(fan_in)
    assert len(np.unique(w["fc1.bias"])) == 512  # random, not zeros


def test_init_follows_pytorch_defaults_for_conv_and_batchnorm() -> None:
    w = init_weights("resnet20")
    _assert_uniform(w["layer3.0.conv2.weight"], 1 / math.sqrt(64 * 3 * 3))
    assert np.abs(w["layer2.0.shortcut.0.weight"]).max() <= 1 / math.sqrt(16)
    for prefix in ("bn1", "layer1.2.bn2", "layer3.0.shortcut.1"):
        np.testing.assert_array_equal(w[f"{prefix}.weight"], 1.0)
        np.testing.assert_array_equal(w[f"{prefix}.bias"], 0.0)
        np.testing.assert_array_equal(w[f"{prefix}.running_mean"], 0.0)
        np.testing.assert_array_equal(w[f"{prefix}.running_var"], 1.0)
        assert w[f"{prefix}.num_batches_tracked"] == 0
    lenet = init_weights("lenet")
    assert np.abs(lenet["conv2.bias"]).max() <= 1 / math.sqrt(6 * 5 * 5)


def test_init_follows_pytorch_defaults_for_embedding_and_layernorm() -> None:
    w = init_weights("gpt")
    assert abs(w["tok.weight"].std() - 1.0) < 0.02  # N(0, 1), 131072 samples
    assert abs(w["tok.weight"].mean()) < 0.02
    np.testing.assert_array_equal(w["blocks.3.ln2.weight"], 1.0)
    np.testing.assert_array_equal(w["ln_f.bias"], 0.0)


def test_digits_classifies_held_out_images() -> None:
    model = mdl.load(source("digits"), weights=str(EXAMPLES / "digits.safetensors"), backend="ref")
    with np.load(EXAMPLES / "digits_test.npz") as data:
        x, y = data["x"], data["y"]
    probs = model(x)
    accuracy = float((probs.argmax(axis=-1) == y).mean())
    assert accuracy >= 0.95, f"accuracy {accuracy:.3f}"
    from safetensors.numpy import load_file

    expected = perceptron_reference(
        x.astype(np.float64), as_f64(load_file(EXAMPLES / "digits.safetensors"))
    )
    assert_close(probs, expected, RTOL, ATOL)


def test_gpt_rejects_token_ids_outside_the_vocabulary() -> None:
    model = mdl.load(source("gpt"), weights=init_weights("gpt"), backend="ref")
    ids = sample_input("gpt").copy()
    ids[1, 5] = 512
    with pytest.raises(mdl.MdlError):
        model(ids)
