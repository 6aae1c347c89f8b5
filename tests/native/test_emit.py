"""The emitter's arithmetic on hand-built loop-IR programs, against numpy (exact for ints)."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest

from mdl.backend import loopir as ir
from mdl.backend.emit import emit
from mdl.backend.jit import _RUN, _llvm, host_target_machine, optimize
from mdl.dims import Dim
from mdl.types import DType

F32, F64, I64, BOOL = DType.F32, DType.F64, DType.I64, DType.BOOL


def run(program: ir.Program, arrays: list[np.ndarray], syms: list[int]) -> tuple[int, np.ndarray]:
    ir.verify(program)
    llvm = _llvm()
    tm = host_target_machine()
    mod = optimize(str(emit(program, llvm.get_process_triple())), tm)
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    fn = _RUN(engine.get_function_address("mdl_run"))
    ptrs = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    s = np.array(syms or [0], np.int64)
    err = np.zeros(4, np.int64)
    rc = fn(s.ctypes.data, ctypes.addressof(ptrs), err.ctypes.data, None)
    return rc, err


def binary_program(op: str, dtype: DType, n: int) -> ir.Program:
    p = ir.Program("t")
    out_dtype = BOOL if op in ir.COMPARISONS else dtype
    p.buffers += [
        ir.Buffer("a", dtype, (Dim.of(n),), "input"),
        ir.Buffer("b", dtype, (Dim.of(n),), "input"),
        ir.Buffer("o", out_dtype, (Dim.of(n),), "output"),
    ]
    i = ir.Var("i")
    value = ir.Bin(op, ir.Load("a", i, dtype), ir.Load("b", i, dtype), out_dtype)
    p.kernels.append(
        ir.Kernel("k", (ir.For("i", ir.idx(0), ir.idx(n), (ir.Store("o", i, value),)),))
    )
    return p


INTS = (
    np.array([7, -7, 7, -7, 0, 5, -9223372036854775807 - 1, 3], np.int64),
    np.array([2, 2, -2, -2, 3, 0, -1, 1], np.int64),
)
FLOATS = (
    np.array([7.5, -7.5, 7.5, -7.5, 0.0, np.nan, np.inf, 1.0, -0.0, 3.0], np.float32),
    np.array([2.0, 2.0, -2.0, -2.0, 3.0, 1.0, 2.0, np.nan, 1.0, 0.0], np.float32),
)


@pytest.mark.parametrize(
    "op, ref",
    [
        ("add", np.add),
        ("sub", np.subtract),
        ("mul", np.multiply),
        ("floordiv", np.floor_divide),
        ("mod", np.mod),
        ("min", np.minimum),
        ("max", np.maximum),
        ("lt", np.less),
        ("ne", np.not_equal),
    ],
)
def test_int_binary_matches_numpy(op: str, ref) -> None:
    a, b = INTS
    out = np.empty(len(a), bool if op in ir.COMPARISONS else np.int64)
    rc, _ = run(binary_program(op, I64, len(a)), [a, b, out], [])
    assert rc == 0
    with np.errstate(all="ignore"):
        want = ref(a, b)
    if op in ("floordiv", "mod"):  # numpy's int // 0 and % 0 are 0, as ours
        want = np.where(b == 0, 0, want)
    np.testing.assert_array_equal(out, want)


@pytest.mark.parametrize(
    "op, ref",
    [
        ("add", np.add),
        ("div", np.divide),
        ("floordiv", np.floor_divide),
        ("mod", np.mod),
        ("min", np.minimum),
        ("max", np.maximum),
        ("pow", np.power),
        ("le", np.less_equal),
        ("ne", np.not_equal),
        ("eq", np.equal),
    ],
)
def test_float_binary_matches_numpy(op: str, ref) -> None:
    a, b = FLOATS
    out = np.empty(len(a), bool if op in ir.COMPARISONS else np.float32)
    rc, _ = run(binary_program(op, F32, len(a)), [a, b, out], [])
    assert rc == 0
    with np.errstate(all="ignore"):
        want = ref(a, b)
    np.testing.assert_array_equal(out, want)


def test_int_pow_with_negative_exponents() -> None:
    a = np.array([2, -2, 1, -1, -1, 0, 3, 5], np.int64)
    b = np.array([10, 3, -5, -3, -4, -1, 0, 27], np.int64)
    out = np.empty(len(a), np.int64)
    rc, _ = run(binary_program("pow", I64, len(a)), [a, b, out], [])
    assert rc == 0
    np.testing.assert_array_equal(out, [1024, -8, 1, -1, 1, 0, 1, 5**27])


def test_symbolic_loop_bounds_locals_and_fail() -> None:
    bdim = Dim.sym("B")
    p = ir.Program("t", symbols=["B"])
    p.buffers += [ir.Buffer("x", F32, (bdim,), "input"), ir.Buffer("o", F32, (bdim,), "output")]
    p.errors.append("E0607: bad value {0}")
    i = ir.Var("i")
    x = ir.Load("x", i, F32)
    p.kernels.append(
        ir.Kernel(
            "k",
            (
                ir.Local("acc", F64, ir.Const(0.0, F64)),
                ir.For(
                    "j",
                    ir.idx(0),
                    ir.dim(bdim),
                    (
                        ir.Assign(
                            "acc",
                            ir.Bin(
                                "add",
                                ir.Var("acc", F64),
                                ir.Cast(ir.Load("x", ir.Var("j"), F32), F64),
                                F64,
                            ),
                        ),
                    ),
                ),
                ir.For(
                    "i",
                    ir.idx(0),
                    ir.dim(bdim),
                    (
                        ir.If(
                            ir.Bin("gt", x, ir.Const(100.0, F32), BOOL),
                            (ir.Fail(0, (ir.Cast(x, I64),)),),
                        ),
                        ir.Store("o", i, ir.Bin("add", x, ir.Cast(ir.Var("acc", F64), F32), F32)),
                    ),
                ),
            ),
        )
    )
    x = np.array([1.0, 2.0, 3.5], np.float32)
    o = np.empty(3, np.float32)
    rc, _ = run(p, [x, o], [3])
    assert rc == 0
    np.testing.assert_allclose(o, x + x.sum())
    x[1] = 500.0
    rc, err = run(p, [x, o], [3])
    assert rc == 1 and err[0] == 500


def test_casts_saturate_and_map_nan_to_zero() -> None:
    p = ir.Program("t")
    n = 6
    p.buffers += [
        ir.Buffer("x", F32, (Dim.of(n),), "input"),
        ir.Buffer("o", I64, (Dim.of(n),), "output"),
        ir.Buffer("z", BOOL, (Dim.of(n),), "output"),
    ]
    i = ir.Var("i")
    x = ir.Load("x", i, F32)
    p.kernels.append(
        ir.Kernel(
            "k",
            (
                ir.For(
                    "i",
                    ir.idx(0),
                    ir.idx(n),
                    (ir.Store("o", i, ir.Cast(x, I64)), ir.Store("z", i, ir.Cast(x, BOOL))),
                ),
            ),
        )
    )
    x = np.array([1.7, -1.7, np.nan, 1e30, -1e30, 0.0], np.float32)
    o = np.empty(n, np.int64)
    z = np.empty(n, bool)
    rc, _ = run(p, [x, o, z], [])
    assert rc == 0
    np.testing.assert_array_equal(o, [1, -1, 0, 2**63 - 1, -(2**63), 0])
    np.testing.assert_array_equal(z, [True, True, True, True, True, False])


def test_every_primitive_has_a_lowering() -> None:
    from mdl.backend.kernels import LOWERINGS, load_all
    from mdl.primitives import REGISTRY

    load_all()
    assert sorted(set(REGISTRY) - set(LOWERINGS)) == []


@pytest.mark.parametrize(
    "m, n, k", [(1, 1, 1), (5, 3, 7), (6, 16, 2), (8, 32, 9), (13, 37, 5), (17, 65, 33), (9, 48, 0)]
)
@pytest.mark.parametrize("width", [8, 16])
def test_gemm_microkernel_edges(m: int, n: int, k: int, width: int) -> None:
    """Full blocks, row and column tails, empty k; both vector widths; k-ordered FMA chains."""
    from mdl.backend import emit as emit_module
    from mdl.backend.jit import host_vector_width

    if width > host_vector_width():
        pytest.skip("this CPU has no vectors that wide")

    p = ir.Program("t")
    p.buffers += [
        ir.Buffer("a", F32, (Dim.of(m), Dim.of(k)), "input"),
        ir.Buffer("b", F32, (Dim.of(k), Dim.of(n)), "input"),
        ir.Buffer("c", F32, (Dim.of(m), Dim.of(n)), "output"),
    ]
    z = ir.idx(0)
    p.kernels.append(
        ir.Kernel(
            "g",
            (
                ir.Gemm(
                    "a",
                    "b",
                    "c",
                    ir.idx(m),
                    ir.idx(n),
                    ir.idx(k),
                    z,
                    z,
                    z,
                    ir.idx(k),
                    ir.idx(n),
                    ir.idx(n),
                ),
            ),
        )
    )
    ir.verify(p)
    llvm = _llvm()
    tm = host_target_machine()
    mod = optimize(str(emit_module.emit(p, llvm.get_process_triple(), vector_width=width)), tm)
    engine = llvm.create_mcjit_compiler(mod, tm)
    engine.finalize_object()
    fn = _RUN(engine.get_function_address("mdl_run"))
    rng = np.random.default_rng(m * 100 + n + k)
    a = rng.standard_normal((m, k)).astype(np.float32)
    b = rng.standard_normal((k, n)).astype(np.float32)
    c = np.full((m, n), np.nan, np.float32)
    arrays = [a, b, c]
    ptrs = (ctypes.c_void_p * 3)(*[x.ctypes.data for x in arrays])
    s = np.zeros(1, np.int64)
    err = np.zeros(4, np.int64)
    assert fn(s.ctypes.data, ctypes.addressof(ptrs), err.ctypes.data, None) == 0
    np.testing.assert_allclose(c, a.astype(np.float64) @ b.astype(np.float64), rtol=1e-5, atol=1e-5)
