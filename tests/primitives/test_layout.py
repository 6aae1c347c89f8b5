"""Layout primitives (reshape, transpose, expand, concat, stack, split, slice): symbolic shape
rules, every error code, and reference values.

Expectations are built with explicit index arithmetic in Python, not with the numpy
call the primitive makes. Layout moves values without arithmetic, so every check
is exact (no tolerance).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from mdl.dims import Dim
from mdl.primitives import REGISTRY, ShapeError, bind
from mdl.types import DType, TensorType

B, T, D = Dim.of("B"), Dim.of("T"), Dim.of("D")


def ttype(*dims, dtype: DType = DType.F32) -> TensorType:
    return TensorType(dtype, tuple(Dim.of(d) for d in dims))


def type_of(a: np.ndarray) -> TensorType:
    return TensorType(DType.from_numpy(a.dtype), tuple(Dim.of(n) for n in a.shape))


def run(name: str, arrays: list[np.ndarray], **attrs) -> tuple[np.ndarray, ...]:
    prim = REGISTRY[name]
    types = prim.infer([type_of(a) for a in arrays], attrs)
    before = [a.copy() for a in arrays]
    results = prim.evaluate(arrays, attrs)
    for a, b in zip(arrays, before, strict=True):
        np.testing.assert_array_equal(a, b)
    assert len(results) == len(types)
    for out, typ in zip(results, types, strict=True):
        assert isinstance(out, np.ndarray) and type_of(out) == typ
    return results


def infer(name: str, operands: list[TensorType], **attrs) -> tuple[TensorType, ...]:
    return REGISTRY[name].infer(operands, attrs)


def error(name: str, operands: list[TensorType], **attrs) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        REGISTRY[name].infer(operands, attrs)
    return info.value


def numbered(*shape: int) -> np.ndarray:
    """Each element holds its own row-major position."""
    return np.arange(int(np.prod(shape)), dtype=np.int64).reshape(shape)


# ---------------------------------------------------------------------------
# reshape


def test_reshape_keeps_row_major_order():
    x = numbered(2, 3, 4)
    (out,) = run("reshape", [x], shape=(4, -1))
    assert out.shape == (4, 6)
    positions = [out[i, j] for i, j in itertools.product(range(4), range(6))]
    assert positions == list(range(24))


def test_reshape_symbolic():
    x = ttype(B, T, 256)
    assert infer("reshape", [x], shape=(B, T, 4, 64)) == (ttype(B, T, 4, 64),)
    assert infer("reshape", [x], shape=(-1, 256)) == (ttype(B * T, 256),)
    assert infer("reshape", [x], shape=(B, -1)) == (ttype(B, 256 * T),)
    assert infer("reshape", [ttype(B, 3 * D)], shape=(B, 3, D)) == (ttype(B, 3, D),)


@pytest.mark.parametrize(
    ("operand", "shape", "code"),
    [
        (ttype(B, 64), (B, 32), "E0307"),
        (ttype(6), (-1, 4), "E0307"),
        (ttype(B, 6), (B, -1, 4), "E0311"),
        (ttype(B, T), (-1, -1), "E0311"),
        (ttype(B, T), (B, T, 0), "E0313"),
        (ttype(B, T), (B, T, -2), "E0313"),
    ],
)
def test_reshape_errors(operand, shape, code):
    e = error("reshape", [operand], shape=shape)
    assert (e.code, e.kwarg) == (code, "shape")


def test_reshape_error_label_counts_elements():
    e = error("reshape", [ttype(B, 64)], shape=(B, 32))
    assert e.label == "64 * B elements != 32 * B"


# ---------------------------------------------------------------------------
# transpose


def test_transpose_moves_axes():
    x = numbered(2, 3, 4)
    (out,) = run("transpose", [x], perm=(1, 2, 0))
    assert out.shape == (3, 4, 2)
    for i, j, k in itertools.product(range(3), range(4), range(2)):
        assert out[i, j, k] == x[k, i, j]
    (rev,) = run("transpose", [x], perm=None)
    assert rev.shape == (4, 3, 2) and rev[3, 2, 1] == x[1, 2, 3]


def test_transpose_symbolic_and_negative_axes():
    x = ttype(B, T, 4, 64)
    assert infer("transpose", [x], perm=(0, 2, 1, 3)) == (ttype(B, 4, T, 64),)
    assert infer("transpose", [x], perm=(0, 2, -1, -3)) == (ttype(B, 4, 64, T),)


@pytest.mark.parametrize("perm", [(0, 1), (0, 1, 1), (0, 1, 3), (2, 1, 0, 3)])
def test_transpose_invalid_permutations(perm):
    e = error("transpose", [ttype(B, T, 4)], perm=perm)
    assert (e.code, e.kwarg) == ("E0308", "perm")
    assert e.help == "for example `transpose(x, 0, 2, 1)`"


# ---------------------------------------------------------------------------
# expand


def test_expand_repeats_size_one_axes():
    x = np.array([[1], [2], [3]], dtype=np.float32)
    (out,) = run("expand", [x], shape=(2, 3, 4))
    for n, i, j in itertools.product(range(2), range(3), range(4)):
        assert out[n, i, j] == x[i, 0]
    out[0, 0, 0] = 99  # a fresh array, not a view of x
    assert x[0, 0] == 1
    (kept,) = run("expand", [x], shape=(-1, 5))
    assert kept.shape == (3, 5)


def test_expand_symbolic_and_errors():
    assert infer("expand", [ttype(1, 64)], shape=(B, 64)) == (ttype(B, 64),)
    assert infer("expand", [ttype(T, 1)], shape=(B, -1, 8)) == (ttype(B, T, 8),)
    e = error("expand", [ttype(3, 4)], shape=(5, 4))
    assert (e.code, e.kwarg) == ("E0301", "shape")
    assert e.help == "only dimensions of size 1 can be expanded"
    assert error("expand", [ttype(B, 4)], shape=(T, 4)).code == "E0301"
    assert error("expand", [ttype(3, 4)], shape=(4,)).code == "E0304"
    assert error("expand", [ttype(3)], shape=(-1, 3)).code == "E0311"
    assert error("expand", [ttype(1)], shape=(0,)).code == "E0313"


# ---------------------------------------------------------------------------
# concat and stack


def test_concat_values_and_symbolic_sum():
    a, b = numbered(2, 2), numbered(2, 3) + 100
    (out,) = run("concat", [a, b], axis=1)
    assert out.tolist() == [
        row_a + row_b for row_a, row_b in zip(a.tolist(), b.tolist(), strict=True)
    ]
    assert infer("concat", [ttype(B, 64), ttype(B, T), ttype(B, 1)], axis=1) == (ttype(B, T + 65),)
    assert infer("concat", [ttype(B, 4)] * 3, axis=0) == (ttype(3 * B, 4),)


def test_concat_errors():
    e = error("concat", [ttype(B, 2), ttype(T, 3)], axis=1)
    assert (e.code, e.arg) == ("E0303", 1)
    assert e.label == "dimension 0 is T, expected B"
    assert error("concat", [ttype(2, 2), ttype(2)], axis=0).code == "E0304"
    assert error("concat", [ttype(2), ttype(2, dtype=DType.I64)], axis=0).code == "E0201"
    e = error("concat", [ttype(), ttype()], axis=0)
    assert e.code == "E0304" and "stack" in e.help
    e = error("concat", [ttype(2)], axis=1)
    assert (e.code, e.kwarg) == ("E0305", "axis")
    assert error("concat", [], axis=0).code == "E0112"


def test_stack_values_and_shapes():
    a, b = numbered(2, 3), numbered(2, 3) + 50
    (out,) = run("stack", [a, b], axis=1)
    assert out.shape == (2, 2, 3)
    for i, k in itertools.product(range(2), range(3)):
        assert (out[i, 0, k], out[i, 1, k]) == (a[i, k], b[i, k])
    assert infer("stack", [ttype(B, T)] * 4, axis=2) == (ttype(B, T, 4),)
    _, attrs = bind(REGISTRY["stack"], [ttype(B), ttype(B)], {"axis": -1})
    assert attrs == {"axis": 1}
    assert infer("stack", [ttype(), ttype()], axis=0) == (ttype(2),)


def test_stack_errors():
    e = error("stack", [ttype(B, 3), ttype(B, 4)], axis=0)
    assert (e.code, e.arg) == ("E0303", 1)
    assert error("stack", [ttype(B)], axis=2).code == "E0305"


# ---------------------------------------------------------------------------
# split


def split_attrs(sections=None, axis=0, sizes=None):
    return {"sections": sections, "axis": axis, "sizes": sizes}


def test_split_equal_parts():
    x = numbered(2, 6)
    parts = run("split", [x], **split_attrs(3, axis=1))
    assert [p.tolist() for p in parts] == [
        [[row[0], row[1]] for row in x.tolist()],
        [[row[2], row[3]] for row in x.tolist()],
        [[row[4], row[5]] for row in x.tolist()],
    ]
    out = infer("split", [ttype(B, T, 3 * D)], **split_attrs(3, axis=2))
    assert out == (ttype(B, T, D),) * 3


def test_split_sizes():
    x = numbered(5, 2)
    parts = run("split", [x], **split_attrs(axis=0, sizes=(2, 3)))
    assert [p.shape for p in parts] == [(2, 2), (3, 2)]
    assert parts[1].tolist() == x.tolist()[2:]
    out = infer("split", [ttype(B, T + 4)], **split_attrs(axis=1, sizes=(T, 4)))
    assert out == (ttype(B, T), ttype(B, 4))
    positional_list = run("split", [x], **split_attrs([1, 4], axis=0))
    assert [p.shape for p in positional_list] == [(1, 2), (4, 2)]


def test_split_errors():
    e = error("split", [ttype(B, 10)], **split_attrs(3, axis=1))
    assert (e.code, e.kwarg) == ("E0306", "sections")
    assert e.help == "give unequal parts with `sizes=[...]`"
    e = error("split", [ttype(B, 4)], **split_attrs(2, axis=0))
    assert e.code == "E0306" and e.help is None
    e = error("split", [ttype(5)], **split_attrs(axis=0, sizes=(2, 2)))
    assert (e.code, e.kwarg) == ("E0303", "sizes")
    assert error("split", [ttype(4)], **split_attrs(0)).code == "E0409"
    assert error("split", [ttype(4)], **split_attrs()).code == "E0112"
    assert error("split", [ttype(4)], **split_attrs(2, sizes=(2, 2))).code == "E0114"
    assert error("split", [ttype(4)], **split_attrs(axis=0, sizes=(4, 0))).code == "E0313"
    assert error("split", [ttype(4)], **split_attrs(T)).code == "E0205"


# ---------------------------------------------------------------------------
# slice


def test_slice_values():
    x = numbered(5, 7)
    (out,) = run("slice", [x], starts=(1, 0), stops=(5, 7), steps=(2, 3))
    expected = [[x[i, j] for j in range(0, 7, 3)] for i in range(1, 5, 2)]
    assert out.tolist() == expected


def test_slice_symbolic_lengths():
    x = ttype(B, T, 64)
    out = infer("slice", [x], starts=(0, 1, 0), stops=(B, T, 64), steps=(1, 2, 3))
    assert out == (TensorType(DType.F32, (B, T.floordiv(2), Dim.of(22))),)
    out = infer("slice", [x], starts=(0, 0, 8), stops=(B, T - 1, 40), steps=(1, 1, 1))
    assert out == (ttype(B, T - 1, 32),)


def test_slice_errors():
    x = ttype(B, 8)
    for attrs, code in [
        ({"starts": (0,), "stops": (B,), "steps": (1,)}, "E0310"),
        ({"starts": (0, 0), "stops": (B, 8), "steps": (1, 0)}, "E0310"),
        ({"starts": (0, 5), "stops": (B, 3), "steps": (1, 1)}, "E0310"),
        ({"starts": (0, -1), "stops": (B, 3), "steps": (1, 1)}, "E0310"),
        ({"starts": (0, 0), "stops": (B, 9), "steps": (1, 1)}, "E0309"),
        ({"starts": (0, 0), "stops": (B + 1, 8), "steps": (1, 1)}, "E0309"),
        ({"starts": (0, 4), "stops": (B, 4), "steps": (1, 1)}, "E0313"),
    ]:
        assert error("slice", [x], **attrs).code == code
