"""Tests of lang/mdl/dims.py: the symbolic dimension algebra."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from mdl.dims import Dim, FloorDiv, as_dim, dim_product

A, B, C = Dim.sym("A"), Dim.sym("B"), Dim.sym("C")
D, H, W, T = Dim.sym("D"), Dim.sym("H"), Dim.sym("W"), Dim.sym("T")

# ---- construction and inspection --------------------------------------------


def test_of_int_str_dim():
    assert Dim.of(64).value == 64
    assert Dim.of("B") == B
    assert Dim.of(B) is B
    assert as_dim(3) == Dim.const(3)
    assert Dim(5) == 5 and Dim("B") == B
    assert Dim.of(np.int64(7)) == 7


@pytest.mark.parametrize("bad", [True, 1.5, None, [1]])
def test_of_rejects_non_dims(bad):
    with pytest.raises(TypeError):
        Dim.of(bad)


def test_sym_needs_a_name():
    with pytest.raises(ValueError, match="non-empty name"):
        Dim.sym("")


def test_const_and_symbol_properties():
    assert Dim.const(0).is_const and Dim.const(0).value == 0
    assert Dim.const(-3).is_const and Dim.const(-3).value == -3
    assert Dim.const(10**12).value == 10**12
    assert not B.is_const and B.value is None
    assert B.is_symbol and B.name == "B"
    for not_symbol in (2 * B, B + 1, B * T, B * B, Dim.of(3), (H + 1) // 2):
        assert not not_symbol.is_symbol
        assert not_symbol.name is None
    assert (B * T + 1).symbols == frozenset({"B", "T"})
    assert ((H + 1) // W).symbols == frozenset({"H", "W"})
    assert Dim.of(4).symbols == frozenset()


def test_immutable():
    with pytest.raises(AttributeError):
        B._terms = ()


# ---- canonical form, equality, hashing ---------------------------------------


def test_canonical_equalities():
    assert 2 * B == B * 2
    assert B + B == 2 * B
    assert B - B == 0
    assert (B + 1) * (B - 1) == B * B - 1
    assert (B + T) * 2 == 2 * T + 2 * B
    assert 3 - B + B == 3
    assert -(0 - B) == B
    assert B * T != B + T
    assert B != T


def test_constant_equals_and_hashes_like_int():
    assert Dim.of(3) == 3 and 3 == Dim.of(3)
    assert hash(Dim.of(3)) == hash(3)
    assert hash(Dim.of(10**9)) == hash(10**9)
    assert B != 3
    assert {Dim.of(3): "x"}[3] == "x"
    assert {B * 2: 1}[2 * B] == 1
    assert (B == "B") is False


def test_int_conversion():
    assert int(Dim.of(12)) == 12
    assert list(range(10))[Dim.of(3)] == 3
    with pytest.raises(TypeError, match="symbolic"):
        int(B)
    assert bool(Dim.of(0)) is False and bool(Dim.of(2)) is True and bool(B) is True


def test_copy_and_pickle_preserve_equality():
    d = (H + 1) // 2 * W + 3
    assert copy.deepcopy(d) == d
    assert pickle.loads(pickle.dumps(d)) == d
    assert hash(pickle.loads(pickle.dumps(d))) == hash(d)


# ---- text ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("dim", "text"),
    [
        (B, "B"),
        (Dim.of(64), "64"),
        (Dim.of(-2), "-2"),
        (3 * D, "3 * D"),
        (T * B, "B * T"),
        (1 + B * 2, "2 * B + 1"),
        (W * H - 1, "H * W - 1"),
        ((H + 1) // 2, "(H + 1) // 2"),
        (1 - B, "-B + 1"),
        (B - 2 * T, "B - 2 * T"),
        (B * B * 3 + B - 5, "3 * B * B + B - 5"),
        (H * W + H + 1, "H * W + H + 1"),
        (-((H + 1) // 2), "-((H + 1) // 2)"),
        (W * ((H + 1) // 2), "W * ((H + 1) // 2)"),
        (B - (H + 1) // 2, "B - (H + 1) // 2"),
        (H // W, "H // W"),
        ((H + 1) // (W * B), "(H + 1) // (B * W)"),
        (Dim.of(6) // B, "6 // B"),
    ],
)
def test_str(dim, text):
    assert str(dim) == text
    assert repr(dim) == f"Dim({text})"


# ---- division -----------------------------------------------------------------


def test_exact_div():
    assert Dim.of(12).exact_div(4) == 3
    assert Dim.of(12).exact_div(5) is None
    assert (4 * B + 8).exact_div(4) == B + 2
    assert (4 * B + 6).exact_div(4) is None
    assert (3 * D * H).exact_div(H) == 3 * D
    assert (3 * D * H).exact_div(3 * H) == D
    assert (D * H + H).exact_div(H) == D + 1
    assert (D * H + 1).exact_div(H) is None
    assert D.exact_div(D * H) is None
    assert (B * B - T * T).exact_div(B + T) == B - T
    assert (B + T).exact_div(B + T) == 1
    assert Dim.of(0).exact_div(B) == 0
    assert D.exact_div(-1) == -D


def test_division_by_zero():
    for op in (lambda: B.exact_div(0), lambda: B.floordiv(B - B), lambda: Dim.of(3).floordiv(0)):
        with pytest.raises(ZeroDivisionError):
            op()


def test_floordiv_folds_and_normalises():
    assert Dim.of(7).floordiv(2) == 3
    assert Dim.of(-7).floordiv(2) == -4
    assert (4 * B).floordiv(2) == 2 * B
    assert (2 * B + 1).floordiv(2) == B
    assert (H - 1) // 2 + 1 == (H + 1) // 2  # conv k=3 s=2 p=1 output size
    assert (2 * H + 2) // 4 == (H + 1) // 2
    assert (B + 7) // 1 == B + 7
    assert (B + 1) // -1 == -B - 1
    assert (H // 2) // 3 == H // 6
    # two stacked stride-2 convs: ceil(ceil(H / 2) / 2) == ceil(H / 4)
    assert ((H + 1) // 2 + 1) // 2 == (H + 3) // 4
    assert (2 * H) // (2 * W) == H // W
    assert str((H + 2 * 1 - 3) // 2 + 1) == "(H + 1) // 2"


def test_floordiv_atom_is_opaque_but_comparable():
    q = (H + 1) // 2
    assert isinstance(q.terms[0][0][0][0], FloorDiv)
    assert q == (H + 1) // 2 and hash(q) == hash((H + 1) // 2)
    assert q != (H + 2) // 2
    assert q * 2 != H + 1


def test_mod_and_pow():
    assert (2 * B + 1) % 2 == 1
    assert Dim.of(7) % 3 == 1
    assert (B + 1) ** 2 == B * B + 2 * B + 1
    assert B**0 == 1
    with pytest.raises(ValueError):
        B ** (-1)


def test_arithmetic_rejects_floats():
    with pytest.raises(TypeError):
        B + 1.5
    with pytest.raises(TypeError):
        2.0 * B


# ---- substitution and evaluation -------------------------------------------


def test_subst():
    d = 3 * D + B * T
    assert d.subst({"D": 4}) == B * T + 12
    assert d.subst({"D": 4, "B": 2, "T": 5}) == 22
    assert d.subst({"X": 1}) is d
    # simultaneous: swapping names does not chain
    assert (B - 2 * T).subst({"B": T, "T": B}) == T - 2 * B
    assert ((H + 1) // 2).subst({"H": 9}) == 5
    assert ((H + 1) // W).subst({"W": 2}) == (H + 1) // 2
    assert ((H + 1) // W).subst({"H": 2 * W - 1}) == 2


def test_evaluate():
    assert (B * T + 3).evaluate({"B": 2, "T": 4}) == 11
    assert ((H - 4) // 3).evaluate({"H": 2}) == -1
    assert Dim.of(5).evaluate({}) == 5
    with pytest.raises(KeyError):
        (B + T).evaluate({"B": 1})


def test_linear_in():
    a, b = (3 * D + B * D + 2).linear_in("D")
    assert a == B + 3 and b == 2
    assert (B * B).linear_in("B") is None
    assert ((D + 1) // 2).linear_in("D") is None
    assert (B + 1).linear_in("D") == (0, B + 1)


def test_dim_product():
    assert dim_product([]) == 1
    assert dim_product([B, 3, T]) == 3 * B * T
    assert dim_product([2, 3]) == 6


# ---- properties ---------------------------------------------------------------

NAMES = ("A", "B", "C")
FAST = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])

leaves = st.one_of(st.sampled_from(NAMES), st.integers(-6, 6))
trees = st.recursive(
    leaves,
    lambda sub: st.one_of(
        st.tuples(st.sampled_from(["+", "-", "*", "//"]), sub, sub),
        st.tuples(st.just("//c"), sub, st.integers(-5, 5).filter(bool)),
    ),
    max_leaves=8,
)
envs = st.fixed_dictionaries({n: st.integers(-9, 9) for n in NAMES})


def build(tree, leaf):
    """Evaluate a tree bottom-up without recursion; `leaf` maps a name or int to a value."""
    stack, values = [(tree, False)], []
    while stack:
        node, done = stack.pop()
        if not isinstance(node, tuple):
            values.append(leaf(node))
        elif node[0] == "//c":
            if done:
                values.append(values.pop() // node[2])
            else:
                stack += [(node, True), (node[1], False)]
        elif done:
            right, left = values.pop(), values.pop()
            match node[0]:
                case "+":
                    values.append(left + right)
                case "-":
                    values.append(left - right)
                case "*":
                    values.append(left * right)
                case "//":
                    values.append(left // right)
        else:
            stack += [(node, True), (node[2], False), (node[1], False)]
    return values.pop()


def int_value(tree, env):
    try:
        return build(tree, lambda x: env[x] if isinstance(x, str) else x)
    except ZeroDivisionError:
        return None


def dim_value(tree):
    return build(tree, Dim.of)


def mirror(tree):
    """The same value with + and * operands swapped (commuted)."""
    if not isinstance(tree, tuple):
        return tree
    if tree[0] == "//c":
        return ("//c", mirror(tree[1]), tree[2])
    op, left, right = tree[0], mirror(tree[1]), mirror(tree[2])
    return (op, right, left) if op in "+*" else (op, left, right)


@FAST
@given(trees, envs)
def test_arithmetic_agrees_with_ints(tree, env):
    expected = int_value(tree, env)
    assume(expected is not None)
    d = dim_value(tree)
    assert d.evaluate(env) == expected
    assert d.subst(env) == expected
    # partial substitution, then the rest
    partial = d.subst({"A": env["A"]})
    assert partial.evaluate(env) == expected
    assert "A" not in partial.symbols


@FAST
@given(trees, envs)
def test_str_is_python_that_evaluates_to_the_same(tree, env):
    try:
        d = dim_value(tree)
        expected = d.evaluate(env)
    except ZeroDivisionError:
        assume(False)
    assert eval(str(d), {"__builtins__": {}}, dict(env)) == expected
    assert repr(d) == f"Dim({d})"


@FAST
@given(trees)
def test_equal_values_print_and_hash_alike(tree):
    try:
        d, m = dim_value(tree), dim_value(mirror(tree))
    except ZeroDivisionError:
        assume(False)
    assert d == m
    assert str(d) == str(m)
    assert hash(d) == hash(m)
    assert str(dim_value(tree)) == str(d)


polys = st.recursive(
    leaves,
    lambda sub: st.tuples(st.sampled_from(["+", "-", "*"]), sub, sub),
    max_leaves=6,
)


@FAST
@given(polys, polys, envs)
def test_exact_div_of_a_product(a_tree, b_tree, env):
    a, b = dim_value(a_tree), dim_value(b_tree)
    assume(b != 0)
    assert (a * b).exact_div(b) == a
    assert (a * b).floordiv(b) == a
    q = (a + 1).exact_div(b)
    if q is not None:  # whatever it claims must be exact
        assert q * b == a + 1


@FAST
@given(st.integers(-50, 50), st.integers(-7, 7).filter(bool))
def test_floordiv_matches_python_for_constants(a, b):
    assert Dim.of(a).floordiv(b) == a // b
    assert Dim.of(a) // Dim.of(b) == a // b
    exact = Dim.of(a).exact_div(b)
    assert exact == (a // b if a % b == 0 else None)


@FAST
@given(polys, polys, st.integers(-6, 6).filter(bool), envs)
def test_floordiv_matches_python_under_substitution(a_tree, b_tree, k, env):
    a, b = dim_value(a_tree), dim_value(b_tree)
    assert a.floordiv(k).evaluate(env) == a.evaluate(env) // k
    assert (a.floordiv(k) + b).floordiv(k + 7).evaluate(env) == (
        (a.evaluate(env) // k + b.evaluate(env)) // (k + 7)
    )
    bv = b.evaluate(env)
    assume(bv != 0 and b != 0)
    assert a.floordiv(b).evaluate(env) == a.evaluate(env) // bv
