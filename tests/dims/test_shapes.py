"""Tests of lang/mdl/shapes.py: broadcasting, matching declared shapes, axis helpers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mdl.dims import Dim
from mdl.shapes import (
    BroadcastError,
    MatchError,
    Variadic,
    Wildcard,
    broadcast_shapes,
    match_shape,
    normalize_axis,
    num_elements,
    shape_str,
    substitute,
)

B, T, C, D, H, W, N, X, Y = (Dim.sym(n) for n in ("B", "T", "C", "D", "H", "W", "N", "X", "Y"))
S = Variadic("S")
FAST = settings(max_examples=150, deadline=None)


def dims(*xs):
    return tuple(Dim.of(x) for x in xs)


# ---- small helpers ------------------------------------------------------------


def test_shape_str():
    assert shape_str((B, Dim.of(64))) == "[B, 64]"
    assert shape_str(()) == "[]"
    assert shape_str([S, 3 * D, Wildcard()]) == "[*S, 3 * D, _]"


def test_num_elements():
    assert num_elements(dims("B", 3, "T")) == 3 * B * T
    assert num_elements(()) == 1
    assert num_elements(dims(2, 0, "B")) == 0


@pytest.mark.parametrize(
    ("axis", "rank", "expected"), [(0, 1, 0), (-1, 3, 2), (-3, 3, 0), (2, 3, 2)]
)
def test_normalize_axis(axis, rank, expected):
    assert normalize_axis(axis, rank) == expected


def test_normalize_axis_errors():
    with pytest.raises(IndexError) as e:
        normalize_axis(3, 2)
    assert str(e.value) == "axis 3 is out of range for rank 2 (valid axes are -2 to 1)"
    with pytest.raises(IndexError, match="valid axes are -2 to 1"):
        normalize_axis(-3, 2)
    with pytest.raises(IndexError, match=r"a scalar \(rank 0\) has no axes"):
        normalize_axis(0, 0)


# ---- broadcasting -------------------------------------------------------------


def test_broadcast_examples():
    assert broadcast_shapes(dims("B", 1), dims(3)) == (B, 3)
    assert broadcast_shapes(dims("B", "T", 64), dims(64)) == (B, T, 64)
    assert broadcast_shapes(dims("B", 1, 64), dims(1, "T", 1)) == (B, T, 64)
    assert broadcast_shapes(dims("B"), dims("B")) == (B,)
    assert broadcast_shapes(dims(1), dims(1)) == (1,)
    assert broadcast_shapes(dims(3 * D), (D * 3,)) == (3 * D,)
    assert broadcast_shapes((B, 4), (1, 4), (B, 1)) == (B, 4)
    assert broadcast_shapes() == ()
    assert broadcast_shapes(()) == ()
    assert broadcast_shapes((2, 3), (3,)) == (2, 3)  # plain ints accepted
    assert all(isinstance(d, Dim) for d in broadcast_shapes((2, 1), (1,)))


def test_broadcast_error_symbol_vs_constant():
    with pytest.raises(BroadcastError) as e:
        broadcast_shapes(dims("B", 4), dims(3, 4))
    err = e.value
    assert (err.axis, err.left, err.right) == (-2, B, 3)
    assert err.message == "dimension B (axis -2) cannot be broadcast with 3"
    assert str(err) == err.message


@pytest.mark.parametrize(
    "shapes",
    [
        (dims("B"), dims("C")),
        (dims(2, 3), dims(4, 3)),
        (dims("B", 1), dims(1, 1), dims("T", 1)),
        (dims(3 * D), dims("D")),
    ],
)
def test_broadcast_errors(shapes):
    with pytest.raises(BroadcastError) as e:
        broadcast_shapes(*shapes)
    assert e.value.axis < 0
    assert e.value.left != e.value.right


small_shapes = st.lists(st.integers(0, 3), min_size=0, max_size=4).map(tuple)


@FAST
@given(st.lists(small_shapes, min_size=1, max_size=4))
def test_broadcast_matches_numpy(shapes):
    try:
        expected = np.broadcast_shapes(*shapes)
    except ValueError:
        with pytest.raises(BroadcastError):
            broadcast_shapes(*shapes)
        return
    got = broadcast_shapes(*shapes)
    assert tuple(int(d) for d in got) == expected


# ---- matching declared shapes -------------------------------------------------


def test_match_binds_and_checks():
    assert match_shape([B, Dim.sym("In")], dims("B", 64), {"In": Dim.of(64)}) == {
        "In": 64,
        "B": B,
    }
    assert match_shape([S, Dim.sym("In")], dims("B", "T", 64), {}) == {
        "S": (B, T),
        "In": 64,
    }
    assert match_shape([S, N], dims(5), {}) == {"S": (), "N": 5}
    assert match_shape([], (), {}) == {}
    assert match_shape([2, Wildcard(), X], dims(2, 7, "B"), {}) == {"X": B}


def test_match_fixed_dims_first_in_any_order():
    assert match_shape([3 * D, D], dims(96, 32), {}) == {"D": 32}
    assert match_shape([D, 3 * D], dims(32, 96), {}) == {"D": 32}
    assert match_shape([X * Y, X, Y], dims(6, 2, 3), {}) == {"X": 2, "Y": 3}
    # the bare symbol is the source of truth, so the error is at the derived dim
    with pytest.raises(MatchError) as e:
        match_shape([2 * D, D], dims(97, 48), {})
    assert e.value.message == "axis 0: expected 2 * D = 96, got 97"
    assert (e.value.axis, e.value.expected, e.value.got) == (0, "96", "97")


def test_match_solves_linear_dims():
    assert match_shape([2 * X + 1], dims(9), {}) == {"X": 4}
    assert match_shape([H * X], (3 * B * H,), {"H": H}) == {"H": H, "X": 3 * B}
    assert match_shape([X + 2], (T + 2,), {}) == {"X": T}
    assert match_shape([D, X * D], dims(4, 12), {}) == {"D": 4, "X": 3}


def test_match_cannot_infer():
    with pytest.raises(MatchError) as e:
        match_shape([2 * D], dims(97), {})
    assert e.value.message == "cannot infer D from 2 * D = 97"
    assert (e.value.axis, e.value.expected, e.value.got) == (0, "2 * D", "97")
    with pytest.raises(MatchError, match="cannot infer X, Y from X \\* Y = 6"):
        match_shape([X * Y], dims(6), {})
    with pytest.raises(MatchError, match="cannot infer X from X \\* X = 9"):
        match_shape([X * X], dims(9), {})
    with pytest.raises(MatchError, match="cannot infer X from X \\+ 5 = 3: X would be -2"):
        match_shape([X + 5], dims(3), {})
    with pytest.raises(MatchError, match="cannot infer X from 2 \\* X = B"):
        match_shape([2 * X], dims("B"), {})
    # the coefficient becomes zero once its symbols are bound
    with pytest.raises(MatchError, match="cannot infer X"):
        match_shape([N, D, (N - D) * X], dims(4, 4, 0), {})


def test_match_mismatch_messages():
    with pytest.raises(MatchError) as e:
        match_shape([B, Dim.sym("In")], dims("B", 32), {"In": Dim.of(64)})
    assert e.value.message == "axis 1: expected In = 64, got 32"
    assert (e.value.axis, e.value.expected, e.value.got) == (1, "64", "32")
    with pytest.raises(MatchError, match="axis 1: expected 4, got 5"):
        match_shape([X, 4], dims(3, 5), {})
    with pytest.raises(MatchError, match="axis 1: expected X = 3, got 4"):
        match_shape([X, X], dims(3, 4), {})


def test_match_rank_errors():
    with pytest.raises(MatchError) as e:
        match_shape([X, Y, Wildcard()], dims(1, 2), {})
    assert e.value.message == "expected rank 3, got rank 2"
    assert (e.value.axis, e.value.expected, e.value.got) == (None, "rank 3", "rank 2")
    with pytest.raises(MatchError, match="^expected rank at least 2, got rank 1$"):
        match_shape([S, X, Y], dims(1), {})
    with pytest.raises(MatchError, match=r"^expected rank 3 \(\*S = \[B, T\]\), got rank 2$"):
        match_shape([S, X], dims("B", 4), {"S": (B, T)})


def test_match_bound_variadic():
    assert match_shape([S, X], dims("B", "T", 4), {"S": (B, T)})["X"] == 4
    with pytest.raises(MatchError) as e:
        match_shape([S, X], dims("B", 5, 4), {"S": (B, T)})
    assert e.value.message == "axis 1: expected T (from *S = [B, T]), got 5"
    assert (e.value.axis, e.value.expected, e.value.got) == (1, "T", "5")


def test_match_variadic_in_the_middle():
    out = match_shape([X, S, Y, 2], dims(1, 2, 3, 4, 2), {})
    assert out == {"X": 1, "S": (2, 3), "Y": 4}
    with pytest.raises(MatchError, match="axis 4: expected 2, got 5"):
        match_shape([X, S, Y, 2], dims(1, 2, 3, 4, 5), {})


def test_match_malformed_patterns():
    with pytest.raises(MatchError, match="at most one variadic dimension, found \\*S, \\*R"):
        match_shape([S, Variadic("R")], dims(1, 2), {})
    with pytest.raises(MatchError, match="S is bound to the dims"):
        match_shape([Dim.sym("S")], dims(3), {"S": (B,)})
    with pytest.raises(MatchError, match="\\*S is bound to the dim 3"):
        match_shape([S], dims(3), {"S": Dim.of(3)})


def test_match_does_not_mutate_bindings():
    bindings = {"In": Dim.of(64)}
    out = match_shape([B, Dim.sym("In")], dims("T", 64), bindings)
    assert bindings == {"In": 64}
    assert out == {"In": 64, "B": T}


def test_match_keeps_pattern_and_caller_names_apart():
    # the pattern's B is the caller's N and the pattern's N is 4
    assert match_shape([B, N, B * N], (N, 4, 4 * N), {}) == {"B": N, "N": 4}
    # Y is bound to the caller's X before X (the pattern's) is solved
    assert match_shape([Y, X + Y], (X, 2 * X), {}) == {"Y": X, "X": X}
    assert match_shape([Y, 2 * X + Y], (X, X + 2), {}) == {"Y": X, "X": 1}


# ---- substitute ---------------------------------------------------------------


def test_substitute():
    bindings = {"S": (B, T), "D": Dim.of(32)}
    assert substitute([S, 3 * D], bindings) == (B, T, 96)
    assert substitute([X, 4], bindings) == (X, 4)  # unbound dim symbols stay
    assert substitute([], {}) == ()
    with pytest.raises(ValueError, match="cannot substitute `_`"):
        substitute([Wildcard()], {})
    with pytest.raises(ValueError, match="cannot substitute \\*R"):
        substitute([Variadic("R")], bindings)
    with pytest.raises(ValueError, match="S is bound to the dims"):
        substitute([Dim.sym("S")], bindings)


# ---- round trip ---------------------------------------------------------------

NAMES = ("P", "Q", "R")
values = st.one_of(
    st.integers(1, 12).map(Dim.of),
    st.sampled_from(["P", "Q", "B", "T"]).map(Dim.sym),  # caller names may clash
    st.tuples(st.integers(1, 3), st.sampled_from(["B", "T"]), st.integers(0, 3)).map(
        lambda t: t[0] * Dim.sym(t[1]) + t[2]
    ),
)


@st.composite
def patterns_and_bindings(draw):
    names = NAMES[: draw(st.integers(1, len(NAMES)))]
    syms = [Dim.sym(n) for n in names]
    bindings = {n: draw(values) for n in names}
    items = []
    for s in syms:  # each symbol gets an item it can be inferred from
        a, b = draw(st.integers(1, 3)), draw(st.integers(0, 4))
        items.append(draw(st.sampled_from([s, a * s + b])))
    for _ in range(draw(st.integers(0, 3))):  # derived dims, checked once all is bound
        left, right = draw(st.sampled_from(syms)), draw(st.sampled_from(syms))
        items.append(draw(st.sampled_from([left * right, left + right + 1, 2 * left - right])))
    items.append(Dim.of(draw(st.integers(1, 5))))
    items = draw(st.permutations(items))
    if draw(st.booleans()):
        bindings["V"] = tuple(draw(st.lists(values, max_size=3)))
        items.insert(draw(st.integers(0, len(items))), Variadic("V"))
    return items, bindings


@FAST
@given(patterns_and_bindings())
def test_match_round_trips(case):
    pattern, bindings = case
    actual = substitute(pattern, bindings)
    matched = match_shape(pattern, actual, {})
    assert substitute(pattern, matched) == actual
    assert matched == bindings
