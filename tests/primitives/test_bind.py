"""Binding call arguments to primitives, settling scalars, surface names, and the registry.

No numerics here, so no tolerances: every check is exact.
"""

from __future__ import annotations

import pytest

from mdl.codes import CODES
from mdl.dims import Dim
from mdl.primitives import (
    OPERATORS,
    REGISTRY,
    SIGNATURES,
    SURFACE_NAMES,
    Scalar,
    ShapeError,
    bind,
    relocate,
    resolve,
    settle_scalars,
)
from mdl.primitives.bind import fit_number, signature
from mdl.primitives.registry import PARAM_KINDS
from mdl.primitives.surface import DOCS
from mdl.types import DType, TensorType

B, T = Dim.of("B"), Dim.of("T")


def f32(*dims) -> TensorType:
    return TensorType(DType.F32, tuple(Dim.of(d) for d in dims))


def i64(*dims) -> TensorType:
    return TensorType(DType.I64, tuple(Dim.of(d) for d in dims))


def boolean(*dims) -> TensorType:
    return TensorType(DType.BOOL, tuple(Dim.of(d) for d in dims))


def shape_error(fn, *args, **kwargs) -> ShapeError:
    with pytest.raises(ShapeError) as info:
        fn(*args, **kwargs)
    assert info.value.code in CODES
    assert info.value.message == info.value.message.rstrip(".")
    assert info.value.message[0].islower() or info.value.message[0] in "`-"
    return info.value


# ---------------------------------------------------------------------------
# The registry


CORE_OPS = (
    "exp log sqrt rsqrt tanh erf sigmoid sin cos abs neg floor ceil logical_not isnan "
    "add sub mul div mod pow maximum minimum eq ne lt le gt ge logical_and logical_or "
    "where cast reduce_sum reduce_mean reduce_max reduce_min reduce_prod argmax argmin "
    "matmul reshape transpose expand concat stack split slice arange full"
).split()
OTHER_OPS = ("gather", "pad", "conv", "max_pool", "avg_pool")


@pytest.mark.parametrize("name", CORE_OPS + list(OTHER_OPS))
def test_registry_entry_is_complete(name):
    prim = REGISTRY[name]
    assert prim.name == name
    assert prim.params and all(p.kind in PARAM_KINDS for p in prim.params)
    assert callable(prim.infer) and callable(prim.evaluate) and callable(prim.flops)
    assert prim.doc and prim.doc == prim.doc.strip()


# One valid use of every core op: operands, attrs, expected flops.
FLOPS_CASES = {
    "exp": ([f32(B, 64)], {}, 64 * B),
    "add": ([f32(B, 64), f32(64)], {}, 64 * B),
    "eq": ([f32(B, 1), f32(1, T)], {}, B * T),
    "where": ([boolean(B, 1), f32(1, 3), f32()], {}, 3 * B),
    "cast": ([f32(B, 2)], {"dtype": DType.I64}, 2 * B),
    "reduce_sum": ([f32(B, T)], {"axes": (1,), "keep": False}, B * T),
    "argmax": ([f32(B, 10)], {"axis": 1, "keep": False}, 10 * B),
    "matmul": ([f32(3, B, 64), f32(64, 10)], {}, 2 * 3 * 10 * 64 * B),
    "reshape": ([f32(B, 4)], {"shape": (B, 2, 2)}, Dim.of(0)),
    "transpose": ([f32(B, 4)], {"perm": None}, Dim.of(0)),
    "split": ([f32(B, 6)], {"sections": 2, "axis": 1, "sizes": None}, Dim.of(0)),
    "slice": ([f32(B)], {"starts": (0,), "stops": (B,), "steps": (2,)}, Dim.of(0)),
    "arange": ([], {"start": T, "stop": None, "step": 1, "dtype": DType.I64}, Dim.of(0)),
    "full": ([], {"shape": (B,), "value": 1.0, "dtype": None}, Dim.of(0)),
}


@pytest.mark.parametrize("name", sorted(FLOPS_CASES))
def test_flops_are_dims(name):
    operands, attrs, expected = FLOPS_CASES[name]
    prim = REGISTRY[name]
    outputs = prim.infer(operands, attrs)
    flops = prim.flops(operands, outputs, attrs)
    assert isinstance(flops, Dim)
    assert flops == expected


# ---------------------------------------------------------------------------
# bind: positional and keyword arguments


def test_reshape_takes_the_rest_of_the_positionals_or_a_list():
    x = f32(B, T, 256)
    for args in ([x, B, T, 4, 64], [x, [B, T, 4, 64]], [x, (B, T, 4, 64)]):
        operands, attrs = bind(REGISTRY["reshape"], args, {})
        assert operands == [x]
        assert attrs == {"shape": (B, T, Dim.of(4), Dim.of(64))}
        assert all(isinstance(d, Dim) for d in attrs["shape"])
    _, attrs = bind(REGISTRY["reshape"], [x], {"shape": [B, -1]})
    assert attrs["shape"] == (B, Dim.of(-1))


def test_transpose_spellings_agree_and_normalize():
    x = f32(B, T, 4, 64)
    prim = REGISTRY["transpose"]
    spelled = [
        bind(prim, [x, 0, 2, 1, 3], {})[1],
        bind(prim, [x, [0, 2, 1, 3]], {})[1],
        bind(prim, [x, 0, 2, -3, -1], {})[1],
        bind(prim, [x], {"perm": [0, 2, 1, 3]})[1],
    ]
    assert all(a == {"perm": (0, 2, 1, 3)} for a in spelled)
    assert bind(prim, [x], {})[1] == {"perm": (3, 2, 1, 0)}


def test_defaults_are_filled_and_aliases_map():
    x = f32(B, T)
    _, attrs = bind(REGISTRY["reduce_sum"], [x], {})
    assert attrs == {"axes": None, "keep": False}
    _, attrs = bind(REGISTRY["reduce_sum"], [x], {"axis": -1, "keep": True}, name="sum")
    assert attrs == {"axes": (1,), "keep": True}
    _, attrs = bind(REGISTRY["reduce_sum"], [x], {"axis": [-1, 0]})
    assert attrs["axes"] == (0, 1)
    _, attrs = bind(REGISTRY["reduce_sum"], [x, 0], {})
    assert attrs["axes"] == (0,)


def test_numbers_and_constant_dims_become_scalars():
    x = f32(B)
    operands, _ = bind(REGISTRY["add"], [x, 2], {})
    assert operands == [x, Scalar(2)]
    operands, _ = bind(REGISTRY["mul"], [0.5, x], {})
    assert operands == [Scalar(0.5), x]
    operands, _ = bind(REGISTRY["sqrt"], [Dim.of(64)], {})
    assert operands == [Scalar(64)] and isinstance(operands[0].value, int)


def test_variadic_tensors_by_position_or_as_one_list():
    a, b = f32(B, 2), f32(B, 3)
    assert bind(REGISTRY["concat"], [a, b], {"axis": 1}) == ([a, b], {"axis": 1})
    assert bind(REGISTRY["concat"], [[a, b]], {"axis": -1}) == ([a, b], {"axis": 1})
    assert bind(REGISTRY["stack"], [a, a], {"axis": -1}) == ([a, a], {"axis": 2})


def test_dim_params_accept_ints_and_dims():
    _, attrs = bind(REGISTRY["arange"], [T], {})
    assert attrs == {"start": Dim.of(0), "stop": T, "step": 1, "dtype": DType.I64}
    _, attrs = bind(REGISTRY["arange"], [2, 10, 3], {"dtype": DType.I32})
    assert attrs == {"start": Dim.of(2), "stop": Dim.of(10), "step": 3, "dtype": DType.I32}
    _, attrs = bind(REGISTRY["argmax"], [f32(B, 4)], {"axis": Dim.of(-1)})
    assert attrs == {"axis": 1, "keep": False}


def test_split_with_a_list_gives_sizes():
    x = f32(B, 96)
    _, attrs = bind(REGISTRY["split"], [x, [32, 64]], {"axis": -1})
    assert attrs == {"sections": None, "axis": 1, "sizes": (Dim.of(32), Dim.of(64))}


# ---------------------------------------------------------------------------
# bind: errors


def test_too_many_arguments():
    e = shape_error(bind, REGISTRY["exp"], [f32(B), f32(B)], {})
    assert (e.code, e.arg) == ("E0113", 1)
    assert "`exp` takes 1 positional argument but 2 were given" == e.message
    e = shape_error(bind, REGISTRY["reduce_sum"], [f32(B), 0, True, 3], {}, name="sum")
    assert (e.code, e.arg) == ("E0113", 3)
    assert "sum(x, axis=None, keep=false)" in e.notes[0]


def test_missing_argument():
    e = shape_error(bind, REGISTRY["reshape"], [f32(B)], {})
    assert e.code == "E0112" and e.message == "missing argument `shape` in call to `reshape`"
    e = shape_error(bind, REGISTRY["argmax"], [f32(B)], {})
    assert e.code == "E0112" and "`axis`" in e.message


def test_unknown_keyword_suggests_a_close_name():
    e = shape_error(bind, REGISTRY["reduce_sum"], [f32(B)], {"axsi": 0}, name="sum")
    assert (e.code, e.kwarg) == ("E0111", "axsi")
    assert e.help == "did you mean `axis`?"
    e = shape_error(bind, REGISTRY["concat"], [f32(B)], {"zzz": 0})
    assert e.code == "E0111" and e.help is None


def test_argument_given_twice():
    e = shape_error(bind, REGISTRY["reduce_sum"], [f32(B), 0], {"axis": 0})
    assert (e.code, e.kwarg) == ("E0114", "axis")
    assert "by position" in e.label
    e = shape_error(bind, REGISTRY["reduce_sum"], [f32(B)], {"axis": 0, "axes": 0})
    assert (e.code, e.kwarg) == ("E0114", "axes")


def test_compile_time_value_where_a_tensor_goes():
    e = shape_error(bind, REGISTRY["exp"], [[1, 2]], {})
    assert (e.code, e.arg) == ("E0203", 0)
    e = shape_error(bind, REGISTRY["add"], [f32(B), T], {})
    assert (e.code, e.arg) == ("E0203", 1)
    assert "dimension `T`" in e.message
    e = shape_error(bind, REGISTRY["add"], [f32(B), DType.F32], {})
    assert e.code == "E0203"
    e = shape_error(bind, REGISTRY["concat"], [f32(B), None], {})
    assert (e.code, e.arg) == ("E0203", 1)


def test_tensor_where_a_compile_time_value_goes():
    e = shape_error(bind, REGISTRY["reshape"], [f32(B), f32(2)], {})
    assert (e.code, e.arg) == ("E0204", 1)
    e = shape_error(bind, REGISTRY["reshape"], [f32(B), 2, f32(2)], {})
    assert (e.code, e.arg) == ("E0204", 2)
    e = shape_error(bind, REGISTRY["cast"], [f32(B)], {"dtype": f32(1)})
    assert (e.code, e.kwarg) == ("E0204", "dtype")
    e = shape_error(bind, REGISTRY["conv"], [f32(1, 1, 4), f32(1, 1, 1)], {"stride": f32(1)})
    assert e.code == "E0204"


@pytest.mark.parametrize(
    ("name", "args", "kwargs", "where"),
    [
        ("argmax", [f32(B, 2)], {"axis": 1.0}, "axis"),
        ("argmax", [f32(B, 2)], {"axis": True}, "axis"),
        ("argmax", [f32(B, 2)], {"axis": B}, "axis"),
        ("argmax", [f32(B, 2)], {"axis": 0, "keep": 1}, "keep"),
        ("cast", [f32(B)], {"dtype": "f32"}, "dtype"),
        ("reshape", [f32(B)], {"shape": 2.5}, "shape"),
        ("reshape", [f32(B)], {"shape": [B, 1.5]}, "shape"),
        ("reduce_sum", [f32(B)], {"axis": "0"}, "axis"),
        ("arange", [], {"start": 1.5}, "start"),
        ("pad", [f32(B)], {"pads": [1, 1], "value": "zero"}, "value"),
    ],
)
def test_wrong_kind_of_value(name, args, kwargs, where):
    e = shape_error(bind, REGISTRY[name], args, kwargs)
    assert (e.code, e.kwarg) == ("E0205", where)


def test_canonical_errors_point_at_the_argument_written():
    e = shape_error(bind, REGISTRY["reduce_sum"], [f32(B, T)], {"axis": 2})
    assert (e.code, e.kwarg, e.arg) == ("E0305", "axis", None)
    e = shape_error(bind, REGISTRY["reduce_sum"], [f32(B, T), [0, -2]], {})
    assert (e.code, e.arg) == ("E0305", 1)
    e = shape_error(bind, REGISTRY["transpose"], [f32(B, T), 0, 0], {})
    assert (e.code, e.arg) == ("E0308", 1)


# ---------------------------------------------------------------------------
# relocate: errors from infer -> the call as written


def test_relocate_operand_and_attribute_errors():
    where = REGISTRY["where"]
    err = shape_error(where.infer, [boolean(B), f32(B), i64(B)], {})
    assert err.arg == 2
    moved = relocate(err, where, 1, frozenset({"a", "b"}))
    assert (moved.arg, moved.kwarg, moved.code) == (None, "b", "E0201")
    reshape = REGISTRY["reshape"]
    err = shape_error(reshape.infer, [f32(B, 64)], {"shape": (B, 32)})
    assert err.kwarg == "shape"
    moved = relocate(err, reshape, 3, frozenset())
    assert (moved.arg, moved.kwarg) == (1, None)
    concat = REGISTRY["concat"]
    err = shape_error(concat.infer, [f32(B, 2), f32(T, 2)], {"axis": 1})
    assert relocate(err, concat, 2, frozenset()).arg == 1
    assert relocate(err, concat, 1, frozenset()).arg == 0  # concat([a, b]): the list
    argmax = REGISTRY["argmax"]
    err = shape_error(argmax.infer, [f32(B, 2)], {"axis": 1, "keep": "yes"})
    moved = relocate(err, argmax, 1, frozenset({"axis"}))  # keep was a default
    assert (moved.arg, moved.kwarg) == (None, None)


# ---------------------------------------------------------------------------
# settle_scalars


def test_scalars_take_the_first_non_bool_tensor_dtype():
    out = settle_scalars([boolean(B), Scalar(1.0), f32(B)])
    assert out == [boolean(B), TensorType(DType.F32, ()), f32(B)]
    assert settle_scalars([Scalar(2), i64(3)]) == [TensorType(DType.I64, ()), i64(3)]
    assert settle_scalars([i64(3), Scalar(2.0)])[1] == TensorType(DType.I64, ())


def test_scalars_without_a_numeric_tensor_keep_their_own_type():
    assert settle_scalars([Scalar(True), Scalar(1), Scalar(0.5)]) == [
        TensorType(DType.BOOL, ()),
        TensorType(DType.I64, ()),
        TensorType(DType.F32, ()),
    ]
    out = settle_scalars([boolean(B, T), Scalar(0.0), Scalar(float("-inf"))])
    assert out[1:] == [TensorType(DType.F32, ())] * 2
    assert settle_scalars([boolean(B), Scalar(True)])[1] == TensorType(DType.BOOL, ())


def test_fractional_scalar_with_an_int_tensor():
    e = shape_error(settle_scalars, [i64(B), Scalar(0.5)])
    assert (e.code, e.arg) == ("E0201", 1)
    assert e.message == "float literal `0.5` used with an `i64` tensor"
    e = shape_error(settle_scalars, [TensorType(DType.I32, ()), Scalar(2**40)])
    assert (e.code, e.arg) == ("E0409", 1)


def test_fit_number():
    assert fit_number(2.0, DType.I64) == 2 and isinstance(fit_number(2.0, DType.I64), int)
    assert fit_number(3, DType.F32) == 3.0 and isinstance(fit_number(3, DType.F32), float)
    assert fit_number(True, DType.I32) == 1
    assert fit_number(2, DType.BOOL) is True
    assert shape_error(fit_number, float("inf"), DType.I32).code == "E0201"
    assert shape_error(fit_number, -(2**63) - 1, DType.I64).code == "E0409"


# ---------------------------------------------------------------------------
# Surface names


def test_max_and_min_depend_on_the_call():
    assert resolve("max", 2, frozenset()).name == "maximum"
    assert resolve("min", 2, frozenset()).name == "minimum"
    assert resolve("max", 1, frozenset({"axis", "keep"})).name == "reduce_max"
    assert resolve("min", 1, frozenset()).name == "reduce_min"


def test_resolve_renamed_and_same_names():
    assert resolve("sum", 1, frozenset({"axis"})).name == "reduce_sum"
    assert resolve("mean", 1, frozenset()).name == "reduce_mean"
    assert resolve("prod", 1, frozenset()).name == "reduce_prod"
    for name in ("reshape", "exp", "gather", "conv", "where", "arange", "isnan"):
        assert resolve(name, 1, frozenset()).name == name
    assert resolve("relu", 1, frozenset()) is None
    assert resolve("reduce_sum", 1, frozenset()) is None  # graph names are not surface names
    assert resolve("slice", 1, frozenset()) is None  # written x[a:b]


def test_every_surface_name_resolves_and_has_a_signature():
    expected = set(
        "exp log sqrt rsqrt tanh erf sigmoid sin cos abs neg floor ceil logical_not isnan "
        "max min sum mean prod argmax argmin matmul reshape transpose expand concat stack "
        "split where cast arange full gather pad conv max_pool avg_pool logical_and "
        "logical_or".split()
    )
    assert expected <= SURFACE_NAMES
    for name in SURFACE_NAMES:
        assert resolve(name, 1, frozenset()) is not None
        assert SIGNATURES[name].startswith(name + "(")
        assert DOCS[name]
    assert SIGNATURES["sum"] == "sum(x, axis=None, keep=false)"
    assert SIGNATURES["reshape"] == "reshape(x, *shape)"
    assert SIGNATURES["max"] == "max(a, b) | max(x, axis=None, keep=false)"


def test_operators_name_registered_primitives():
    assert OPERATORS["+"] == "add" and OPERATORS["@"] == "matmul" and OPERATORS["neg"] == "neg"
    assert set(OPERATORS) == {
        "+", "-", "*", "/", "//", "%", "**", "@", "==", "!=", "<", "<=", ">", ">=", "neg",
    }  # fmt: skip
    for prim_name in OPERATORS.values():
        assert prim_name in REGISTRY


def test_signature_of_a_primitive():
    assert signature(REGISTRY["concat"]) == "concat(*xs, axis=0)"
    assert signature(REGISTRY["arange"]) == "arange(start, stop=None, step=1, dtype=i64)"
