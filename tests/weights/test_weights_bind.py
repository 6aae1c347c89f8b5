"""Binding weights to declared parameters: every problem reported at once, with codes,
spans, notes and suggestions; real PyTorch-style state dicts load strictly."""

from __future__ import annotations

import numpy as np
import safetensors.numpy

from mdl.codes import CODES
from mdl.span import Span
from mdl.types import DType
from mdl.weights import ParamSpec, bind_weights, read_weights

F32, I64 = DType.F32, DType.I64


def span(line: int) -> Span:
    return Span("mlp.mdl", line, 5, line, 20)


def mlp_specs() -> list[ParamSpec]:
    return [
        ParamSpec("fc1.weight", F32, (32, 64), False, span(3)),
        ParamSpec("fc1.bias", F32, (32,), False, span(4)),
        ParamSpec("fc2.weight", F32, (10, 32), False, span(5)),
        ParamSpec("fc2.bias", F32, (10,), False, span(6)),
    ]


def mlp_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {s.path: rng.standard_normal(s.shape).astype(np.float32) for s in mlp_specs()}


def codes(diags) -> list[tuple[str, str]]:
    return [(d.code, d.message) for d in diags]


def test_matching_weights_bind_cleanly():
    weights = mlp_weights()
    weights["fc1.weight"] = np.asfortranarray(weights["fc1.weight"])
    bound, diags = bind_weights(mlp_specs(), weights, "w.safetensors")
    assert diags == []
    assert list(bound) == [s.path for s in mlp_specs()]
    for spec in mlp_specs():
        assert bound[spec.path].dtype == np.float32 and bound[spec.path].shape == spec.shape
        assert bound[spec.path].flags.c_contiguous
        np.testing.assert_array_equal(bound[spec.path], weights[spec.path])


def test_every_problem_is_reported_at_once():
    weights = mlp_weights()
    del weights["fc1.bias"]
    weights["fc1.weight"] = weights["fc1.weight"].T  # [64, 32]
    weights["fc2.bias"] = weights["fc2.bias"].astype(np.float64)
    weights["fc3.weight"] = np.zeros((2, 2), np.float32)
    bound, diags = bind_weights(mlp_specs(), weights, "w.safetensors")
    assert [d.code for d in diags] == ["E0505", "E0503", "E0506", "E0504"]
    shape, missing, dtype, extra = diags
    assert shape.message == (
        "wrong shape for weight `fc1.weight`: expected f32[32, 64], found f32[64, 32]"
    )
    assert shape.help == "the weight may be transposed"
    assert shape.span == span(3)
    assert missing.message == "missing weight `fc1.bias`" and missing.span == span(4)
    assert missing.help is None  # only when nothing at all is there
    assert dtype.message == "wrong dtype for weight `fc2.bias`: expected f32[10], found f64[10]"
    assert extra.message == "unexpected weight `fc3.weight`" and extra.span is None
    assert all("`w.safetensors`" in " ".join(d.notes) for d in diags)
    assert all(d.code in CODES and d.is_error for d in diags)
    assert list(bound) == ["fc2.weight"]  # only what matched


def test_shape_and_dtype_both_wrong_gives_both():
    weights = mlp_weights()
    weights["fc2.bias"] = np.zeros(11, np.int64)
    _, diags = bind_weights(mlp_specs(), weights, "w.npz")
    assert codes(diags) == [
        ("E0505", "wrong shape for weight `fc2.bias`: expected f32[10], found i64[11]"),
        ("E0506", "wrong dtype for weight `fc2.bias`: expected f32[10], found i64[11]"),
    ]


def test_square_or_non_2d_mismatch_is_not_called_transposed():
    specs = [ParamSpec("sq", F32, (3, 4)), ParamSpec("cube", F32, (2, 3, 4))]
    tensors = {"sq": np.zeros((4, 4), np.float32), "cube": np.zeros((4, 3, 2), np.float32)}
    _, diags = bind_weights(specs, tensors, "w")
    assert [d.code for d in diags] == ["E0505", "E0505"]
    assert all(d.help is None for d in diags)


def test_all_missing_suggests_mdlc_init():
    _, diags = bind_weights(mlp_specs(), {}, "empty.safetensors")
    assert [d.code for d in diags] == ["E0503"] * 4
    assert all(d.help == "run `mdlc init` to create initial weights" for d in diags)


def test_did_you_mean_for_misspelled_and_prefixed_names():
    weights = mlp_weights()
    weights["fc1.weigth"] = weights.pop("fc1.weight")
    weights["module.fc2.bias"] = weights.pop("fc2.bias")
    weights["totally.unrelated"] = np.zeros(1, np.float32)
    _, diags = bind_weights(mlp_specs(), weights, "w")
    helps = {d.message: d.help for d in diags if d.code == "E0504"}
    assert helps == {
        "unexpected weight `fc1.weigth`": "did you mean `fc1.weight`?",
        "unexpected weight `module.fc2.bias`": "did you mean `fc2.bias`?",
        "unexpected weight `totally.unrelated`": None,
    }


def test_unexpected_names_are_sorted_and_buffers_are_called_buffers():
    specs = [ParamSpec("bn.running_mean", F32, (4,), is_buffer=True)]
    tensors = {"z": np.zeros(1), "a": np.zeros(1)}
    _, diags = bind_weights(specs, tensors, "w")
    assert [d.message for d in diags] == [
        "missing buffer `bn.running_mean`",
        "unexpected weight `a`",
        "unexpected weight `z`",
    ]


def batchnorm_specs() -> list[ParamSpec]:
    return [
        ParamSpec("conv.weight", F32, (8, 3, 3, 3)),
        ParamSpec("bn.weight", F32, (8,)),
        ParamSpec("bn.bias", F32, (8,)),
        ParamSpec("bn.running_mean", F32, (8,), is_buffer=True),
        ParamSpec("bn.running_var", F32, (8,), is_buffer=True),
        ParamSpec("bn.num_batches_tracked", I64, (), is_buffer=True),
    ]


def test_pytorch_state_dict_with_integer_scalar_buffer_loads_strictly(tmp_path):
    # What `safetensors.torch.save_file(model.state_dict())` writes for Conv2d + BatchNorm2d:
    # `num_batches_tracked` is an int64 scalar (shape []).
    state = {
        "conv.weight": np.full((8, 3, 3, 3), 0.1, np.float32),
        "bn.weight": np.ones(8, np.float32),
        "bn.bias": np.zeros(8, np.float32),
        "bn.running_mean": np.linspace(-1, 1, 8).astype(np.float32),
        "bn.running_var": np.linspace(0.5, 2, 8).astype(np.float32),
        "bn.num_batches_tracked": np.array(1234, dtype=np.int64),
    }
    path = tmp_path / "resnet_block.safetensors"
    safetensors.numpy.save_file(state, str(path), metadata={"format": "pt"})
    bound, diags = bind_weights(batchnorm_specs(), read_weights(path), str(path))
    assert diags == []
    assert bound["bn.num_batches_tracked"].dtype == np.int64
    assert (
        bound["bn.num_batches_tracked"].shape == () and int(bound["bn.num_batches_tracked"]) == 1234
    )
    np.testing.assert_array_equal(bound["bn.running_var"], state["bn.running_var"])


def test_scalar_buffer_stored_as_one_element_vector_is_a_shape_error():
    specs = [ParamSpec("bn.num_batches_tracked", I64, (), is_buffer=True)]
    _, diags = bind_weights(specs, {"bn.num_batches_tracked": np.array([3])}, "w")
    assert codes(diags) == [
        ("E0505", "wrong shape for buffer `bn.num_batches_tracked`: expected i64[], found i64[1]")
    ]


def test_foreign_values_are_dtype_errors_not_crashes():
    specs = [ParamSpec("a", F32, (2,)), ParamSpec("b", F32, (2,)), ParamSpec("c", F32, (2,)),
             ParamSpec("d", F32, (2,))]  # fmt: skip
    tensors = {
        "a": [1.0, 2.0],  # a Python list is f64
        "b": np.zeros(2, np.uint8),
        "c": np.array([object(), object()]),
        "d": np.arange(2, dtype=">f4"),  # big-endian f32 is still f32
    }
    bound, diags = bind_weights(specs, tensors, "w")
    assert codes(diags) == [
        ("E0506", "wrong dtype for weight `a`: expected f32[2], found f64[2]"),
        ("E0506", "wrong dtype for weight `b`: expected f32[2], found uint8[2]"),
        (
            "E0506",
            "wrong dtype for weight `c`: expected f32[2], found a value that is not an array",
        ),
    ]
    assert bound["d"].dtype == np.dtype("float32") and bound["d"].dtype.isnative
    assert bound["d"].tolist() == [0.0, 1.0]


def test_unexpected_names_are_printed_safely():
    _, diags = bind_weights([], {"evil\x1b[31m\nname": np.zeros(1)}, "w")
    assert [d.message for d in diags] == ["unexpected weight `evil\\x1b[31m\\x0aname`"]
