"""Tests of gather and pad (mdl/primitives/gather.py): shape rules and numpy semantics.

References are element-by-element loops written here from the ONNX Gather and
Pad (constant mode) definitions, plus hand-computed cases and the committed
PyTorch embedding fixture. Both ops only move values, so every comparison is
exact (no tolerance).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file

import mdl.primitives.gather  # noqa: F401  (registers the primitives)
from mdl.dims import Dim
from mdl.primitives.registry import REGISTRY, EvalError, ShapeError
from mdl.types import DType, TensorType

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "torch"


def tt(dtype: DType, *dims: int | str | Dim) -> TensorType:
    return TensorType(dtype, tuple(Dim.of(d) for d in dims))


def attrs_for(name: str, **given) -> dict:
    attrs = {p.name: p.default for p in REGISTRY[name].params if p.kind != "tensor"}
    attrs.update(given)
    return attrs


def infer(name: str, operands: list[TensorType], **given) -> TensorType:
    (out,) = REGISTRY[name].infer(operands, attrs_for(name, **given))
    return out


def run(name: str, *arrays: np.ndarray, **given) -> np.ndarray:
    """Evaluate, after checking that the shape rule predicts the result's dtype and shape."""
    attrs = attrs_for(name, **given)
    types = [tt(DType.from_numpy(a.dtype), *a.shape) for a in arrays]
    (predicted,) = REGISTRY[name].infer(types, attrs)
    copies = [a.copy() for a in arrays]
    (out,) = REGISTRY[name].evaluate(list(arrays), attrs)
    for a, c in zip(arrays, copies, strict=True):
        np.testing.assert_array_equal(a, c)
    assert out.dtype == predicted.dtype.numpy
    assert out.shape == tuple(int(d) for d in predicted.shape)
    return out


def assert_shape_error(name, operands, attrs, code, arg, kwarg):
    with pytest.raises(ShapeError) as err:
        infer(name, operands, **attrs)
    e = err.value
    assert (e.code, e.arg, e.kwarg) == (code, arg, kwarg), e.message
    assert e.message[0].islower() or not e.message[0].isalpha(), e.message
    assert not e.message.endswith("."), e.message


# ---------------------------------------------------------------------------
# gather


def gather_loops(table: np.ndarray, indices: np.ndarray, axis: int) -> np.ndarray:
    axis %= table.ndim
    size = table.shape[axis]
    out_shape = table.shape[:axis] + indices.shape + table.shape[axis + 1 :]
    out = np.empty(out_shape, table.dtype)
    for pos in itertools.product(*map(range, out_shape)):
        before = pos[:axis]
        picked = int(indices[pos[axis : axis + indices.ndim]])
        after = pos[axis + indices.ndim :]
        row = picked + size if picked < 0 else picked
        out[pos] = table[(*before, row, *after)]
    return out


@pytest.mark.parametrize(
    ("table_shape", "indices", "axis"),
    [
        ((10, 4), [[2, 0, 9], [3, 3, 1]], 0),  # an embedding lookup
        ((10, 4), [[-1, -10, 4]], 0),  # negative indices count from the end
        ((3, 5, 2), [4, -5, 0, 1], 1),
        ((3, 5, 2), [[1], [-2]], -1),
        ((4, 3), 2, 0),  # a scalar index drops the axis
        ((4, 3), [], 1),  # no indices: an empty axis
        ((6,), [[5, -6], [0, 1]], 0),
    ],
)
@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_gather_matches_loops(table_shape, indices, axis, index_dtype):
    table = np.arange(np.prod(table_shape), dtype=np.float32).reshape(table_shape)
    ids = np.array(indices, dtype=index_dtype)
    np.testing.assert_array_equal(
        run("gather", table, ids, axis=axis), gather_loops(table, ids, axis)
    )


def test_gather_hand_computed_and_any_table_dtype():
    table = np.array([[1, 2], [3, 4], [5, 6]], np.int64)
    ids = np.array([2, -3, -1], np.int32)
    np.testing.assert_array_equal(run("gather", table, ids), [[5, 6], [1, 2], [5, 6]])
    flags = np.array([True, False, True])
    np.testing.assert_array_equal(run("gather", flags, np.array([1, 0])), [False, True])


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (12, "index 12 out of range for axis 0 of size 10"),
        (10, "index 10 out of range for axis 0 of size 10"),
        (-11, "index -11 out of range for axis 0 of size 10"),
    ],
)
def test_gather_out_of_range_is_an_eval_error(index, message):
    table = np.zeros((10, 3), np.float32)
    ids = np.array([[0, 1], [index, 2]], np.int64)
    with pytest.raises(EvalError) as err:
        REGISTRY["gather"].evaluate([table, ids], attrs_for("gather"))
    assert (err.value.code, err.value.message) == ("E0607", message)


def test_gather_out_of_range_names_the_axis_and_first_bad_index():
    table = np.zeros((2, 3), np.float32)
    with pytest.raises(EvalError) as err:
        REGISTRY["gather"].evaluate(
            [table, np.array([0, 7, -9], np.int32)], attrs_for("gather", axis=-1)
        )
    assert err.value.message == "index 7 out of range for axis 1 of size 3"


def test_gather_embedding_matches_torch():
    t = load_file(str(FIXTURES / "embedding.safetensors"))
    np.testing.assert_array_equal(run("gather", t["weight"], t["__input__"]), t["__output__"])


def test_gather_symbolic_shapes():
    out = infer("gather", [tt(DType.F32, "V", "D"), tt(DType.I64, "B", "T")])
    assert out == tt(DType.F32, "B", "T", "D")
    out = infer("gather", [tt(DType.F16, 2, "V", 3), tt(DType.I32, "K")], axis=-2)
    assert out == tt(DType.F16, 2, "K", 3)


@pytest.mark.parametrize(
    ("operands", "attrs", "code", "arg", "kwarg"),
    [
        ([tt(DType.F32, 10, 4), tt(DType.F32, 3)], {}, "E0202", 1, None),
        ([tt(DType.F32, 10, 4), tt(DType.BOOL, 3)], {}, "E0202", 1, None),
        ([tt(DType.F32, 10, 4), tt(DType.I64, 3)], {"axis": 2}, "E0305", None, "axis"),
        ([tt(DType.F32, 10, 4), tt(DType.I64, 3)], {"axis": -3}, "E0305", None, "axis"),
        ([tt(DType.F32), tt(DType.I64, 3)], {}, "E0305", None, "axis"),
        ([tt(DType.F32, 10, 4), tt(DType.I64, 3)], {"axis": 1.0}, "E0205", None, "axis"),
    ],
)
def test_gather_shape_errors(operands, attrs, code, arg, kwarg):
    assert_shape_error("gather", operands, attrs, code, arg, kwarg)


# ---------------------------------------------------------------------------
# pad


def pad_loops(x: np.ndarray, pads: list[int], value) -> np.ndarray:
    rank = x.ndim
    begins, ends = pads[:rank], pads[rank:]
    out_shape = tuple(n + b + e for n, b, e in zip(x.shape, begins, ends, strict=True))
    out = np.empty(out_shape, x.dtype)
    for pos in itertools.product(*map(range, out_shape)):
        src = tuple(p - b for p, b in zip(pos, begins, strict=True))
        inside = all(0 <= s < n for s, n in zip(src, x.shape, strict=True))
        out[pos] = x[src] if inside else value
    return out


@pytest.mark.parametrize(
    ("shape", "pads", "value", "dtype"),
    [
        ((3,), [1, 2], 0.0, np.float32),
        ((2, 3), [0, 1, 2, 0], -1.5, np.float32),  # asymmetric, ONNX order
        ((2, 3), [0, 0, 0, 0], 7.0, np.float64),
        ((1, 2, 2, 3), [0, 0, 1, 1, 0, 0, 1, 2], -np.inf, np.float32),
        ((2, 2), [1, 1, 1, 1], 3, np.int32),
        ((2, 2), [1, 0, 0, 1], -4.0, np.int64),
        ((2,), [1, 1], 1, np.bool_),
        ((), [], 0.0, np.float32),
    ],
)
def test_pad_matches_loops(shape, pads, value, dtype):
    x = (np.arange(int(np.prod(shape))).reshape(shape) % 3).astype(dtype)
    np.testing.assert_array_equal(run("pad", x, pads=pads, value=value), pad_loops(x, pads, value))


def test_pad_hand_computed_and_dim_amounts():
    x = np.array([[1.0, 2.0]], np.float32)
    out = run("pad", x, pads=[Dim(1), 0, 0, Dim(2)], value=9.0)
    np.testing.assert_array_equal(out, [[9, 9, 9, 9], [1, 2, 9, 9]])


def test_pad_symbolic_shape():
    out = infer("pad", [tt(DType.F32, "N", "T")], pads=[0, Dim("P"), 0, 1])
    assert out == TensorType(DType.F32, (Dim("N"), Dim("T") + Dim("P") + 1))


@pytest.mark.parametrize(
    ("operands", "attrs", "code", "kwarg"),
    [
        ([tt(DType.F32, 2, 3)], {"pads": [1, 1]}, "E0304", "pads"),
        ([tt(DType.F32, 2, 3)], {"pads": [1, 1, 1, 1, 1, 1]}, "E0304", "pads"),
        ([tt(DType.F32, 2, 3)], {"pads": [0, -1, 0, 0]}, "E0310", "pads"),
        ([tt(DType.F32, 2, 3)], {"pads": [0, Dim(-2), 0, 0]}, "E0310", "pads"),
        ([tt(DType.F32, 2, 3)], {"pads": [0, 1.0, 0, 0]}, "E0205", "pads"),
        ([tt(DType.F32, 2, 3)], {"pads": 1}, "E0205", "pads"),
        ([tt(DType.I32, 2, 3)], {"pads": [0, 1, 0, 0], "value": 0.5}, "E0202", "value"),
        ([tt(DType.I32, 2, 3)], {"pads": [0, 1, 0, 0], "value": 2.0**40}, "E0202", "value"),
        ([tt(DType.I64, 2, 3)], {"pads": [0, 1, 0, 0], "value": float("inf")}, "E0202", "value"),
        ([tt(DType.BOOL, 2, 3)], {"pads": [0, 1, 0, 0], "value": 2}, "E0202", "value"),
        ([tt(DType.F32, 2, 3)], {"pads": [0, 1, 0, 0], "value": "0"}, "E0205", "value"),
    ],
)
def test_pad_shape_errors(operands, attrs, code, kwarg):
    assert_shape_error("pad", operands, attrs, code, None, kwarg)


def test_pad_and_gather_cost_nothing():
    x = tt(DType.F32, "N", 4)
    for name, operands, attrs in [
        ("pad", [x], attrs_for("pad", pads=[1, 1, 1, 1])),
        ("gather", [x, tt(DType.I64, 3)], attrs_for("gather")),
    ]:
        outputs = REGISTRY[name].infer(operands, attrs)
        assert REGISTRY[name].flops(operands, outputs, attrs) == 0
