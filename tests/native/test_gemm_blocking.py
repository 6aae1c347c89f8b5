"""The GEMM kernel alone (backend/gemm.py), JIT-compiled and called through ctypes: every
element is the k-ordered chain of fused multiply-adds from 0 in every path (unpacked,
packed, K and N blocks, row and column tails, both vector widths), bit for bit, so
row and column blocks of one product match one call; nothing outside C[:m, :n] is
written and nothing outside A[:m, :k], B[:k, :n] is read; concurrent calls agree.
"""

from __future__ import annotations

import ctypes
import threading
from fractions import Fraction

import llvmlite.ir as ll
import numpy as np
import pytest

from mdl.backend.gemm import (
    KC,
    PACK_ALWAYS_ROWS,
    PACK_MIN_B_BYTES,
    PACK_MIN_ROWS,
    STREAM_MIN_B_BYTES,
    block_columns,
    define_gemm,
)
from mdl.backend.jit import _llvm, host_target_machine, host_vector_width, optimize

_ARGS = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 6
NUMPY = {"f32": np.float32, "f64": np.float64}
_compiled: dict[tuple[str, int], tuple[object, object]] = {}


def gemm(dtype: str, width: int):
    """A callable (a, b, c, m, n, k, lda, ldb, ldc) with addresses, JIT-compiled once."""
    key = (dtype, width)
    if key not in _compiled:
        module = ll.Module()
        t = ll.FloatType() if dtype == "f32" else ll.DoubleType()
        fn = define_gemm(module, t, width)
        fn.linkage = "external"
        tm = host_target_machine()
        engine = _llvm().create_mcjit_compiler(optimize(str(module), tm), tm)
        engine.finalize_object()
        call = ctypes.CFUNCTYPE(None, *_ARGS)(engine.get_function_address(fn.name))
        _compiled[key] = (engine, call)  # the engine owns the code: keep it alive
    return _compiled[key][1]


def call(fn, a: np.ndarray, b: np.ndarray, c: np.ndarray) -> None:
    """c = a @ b on (possibly strided-row) views: pointers plus leading dimensions."""
    (m, k), n = a.shape, b.shape[1]
    assert b.shape[0] == k and c.shape == (m, n)
    # numpy gives empty arrays zero strides: any leading dimension >= 1 is right for them
    lds = [max(1, x.strides[0] // x.itemsize) for x in (a, b, c)]
    assert all(x.strides[1] == x.itemsize for x in (a, b, c) if x.size > 1)
    fn(*(x.ctypes.data for x in (a, b, c)), m, n, k, *lds)


def widths() -> list[int]:
    # the AVX2 code (8 lanes of f32) runs on an AVX-512 machine too
    return sorted({8, host_vector_width()})


def fma_chain_f32(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The f32 chain acc = fma(a[:, p], b[p, :], acc) for p in k order, from 0. With the
    operands of `exact_operands` every f64 step is exact, so rounding it to f32 is the
    single rounding of a fused multiply-add."""
    acc = np.zeros((a.shape[0], b.shape[1]), np.float32)
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    for p in range(a.shape[1]):
        acc = (acc.astype(np.float64) + a64[:, p, None] * b64[p, None, :]).astype(np.float32)
    return acc


def exact_operands(rng: np.random.Generator, m: int, n: int, k: int) -> tuple[np.ndarray, ...]:
    # multiples of 2^-14 below 4: products are multiples of 2^-28 below 16 and sums stay
    # below 2^16 for k < 4096, 44 bits in all, exact in f64 but not in f32's 24
    def draw(shape: tuple[int, int]) -> np.ndarray:
        return (rng.integers(-(2**16), 2**16, size=shape) / 2**14).astype(np.float32)

    return draw((m, k)), draw((k, n))


def bits(x: np.ndarray) -> np.ndarray:
    return x.view(np.uint32 if x.dtype == np.float32 else np.uint64)


def padded(x: np.ndarray, rows: int, cols: int, fill: float) -> np.ndarray:
    """`x` as a view into a larger buffer whose other elements are `fill`."""
    big = np.full((x.shape[0] + rows, x.shape[1] + cols), fill, x.dtype)
    big[: x.shape[0], : x.shape[1]] = x
    return big[: x.shape[0], : x.shape[1]]


NC = block_columns(ll.FloatType(), 16)
BIG = PACK_ALWAYS_ROWS + 5  # rows enough to pack any B wider than a panel
WIDE = PACK_MIN_B_BYTES // 4 // 600 + 50  # columns enough to pack B[600, WIDE] from 32 rows on
STREAMED = STREAM_MIN_B_BYTES // 4 // 300 + 7  # B[300, STREAMED] unpacked, in short K blocks
# (m, n, k): unpacked products (small, skinny, wide B in short K blocks) and packed ones
# with K blocks (k > KC), column blocks (n > NC), every row tail (m % 8, m % 6) and
# column tails of 1..16 and 17..31 columns
SHAPES = [
    (1, 1, 1),
    (1, 13, 784),
    (1, STREAMED, 300),
    (13, STREAMED, 300),
    (13, 70, 101),
    (7, 13, 65),
    (3, 50, 1),
    (1024, 16, 27),
    (64, 32, 144),
    (BIG, 33, 7),
    (BIG, NC + 44, KC + KC + 88),
    (BIG + 2, 61, KC + 1),
    (PACK_MIN_ROWS + 3, WIDE, 600),
    (41, 7, 300),
]


@pytest.mark.parametrize("width", widths())
@pytest.mark.parametrize(("m", "n", "k"), SHAPES)
def test_f32_is_the_fused_multiply_add_chain(m, n, k, width):
    a, b = exact_operands(np.random.default_rng(m * n + k), m, n, k)
    c = np.full((m, n), np.nan, np.float32)
    call(gemm("f32", width), a, b, c)
    np.testing.assert_array_equal(bits(c), bits(fma_chain_f32(a, b)))


@pytest.mark.parametrize("width", [w // 2 for w in widths()])
def test_f64_is_the_fused_multiply_add_chain(width):
    # exact rational arithmetic, rounded once per step as a fused multiply-add is;
    # packed (many rows, n over one panel), two K blocks, tails of rows and columns
    m, n, k = BIG, 2 * width + 3, KC + 3
    rng = np.random.default_rng(7)
    a, b = rng.standard_normal((m, k)), rng.standard_normal((k, n))
    c = np.empty((m, n))
    call(gemm("f64", width), a, b, c)
    fa = [[Fraction(x) for x in row] for row in a.tolist()]
    fb = [[Fraction(x) for x in row] for row in b.T.tolist()]
    for i in (0, m - 1):  # a full row block and the last row of the tail
        for j in range(n):
            acc = 0.0
            for x, y in zip(fa[i], fb[j], strict=True):
                acc = float(x * y + Fraction(acc))
            assert c[i, j] == acc, (i, j)


def test_empty_depth_writes_zeros():
    for width in widths():
        for m, n in [(3, 5), (BIG, 100)]:
            c = np.full((m, n), np.nan, np.float32)
            call(gemm("f32", width), np.empty((m, 0), np.float32), np.empty((0, n), np.float32), c)
            assert not np.any(c), (width, m, n)


@pytest.mark.parametrize("width", widths())
@pytest.mark.parametrize(
    ("m", "n", "k"), [(5, 19, 9), (9, STREAMED, 300), (BIG, 45, KC + 5), (BIG, 300, 40)]
)
def test_reads_and_writes_only_its_blocks(m, n, k, width):
    # NaN around A and B would spread into C if read; C's surroundings must stay as they were
    a, b = exact_operands(np.random.default_rng(k), m, n, k)
    a, b = padded(a, 3, 17, np.nan), padded(b, 5, 23, np.nan)
    c = padded(np.zeros((m, n), np.float32), 4, 29, -7.0)
    whole = c.base if c.base is not None else c
    call(gemm("f32", width), a, b, c)
    np.testing.assert_array_equal(bits(c), bits(fma_chain_f32(a, b)))
    outside = np.ones(whole.shape, bool)
    outside[:m, :n] = False
    assert np.all(whole[outside] == -7.0)


@pytest.mark.parametrize("dtype", ["f32", "f64"])
def test_row_and_column_blocks_match_one_call(dtype):
    # general data: blocks at odd split points, through pointer offsets, are bit-identical
    # the whole product is packed; most blocks, with fewer rows or columns, are not
    m, n, k = BIG + 17, 301, 517
    rng = np.random.default_rng(11)
    a = rng.standard_normal((m, k)).astype(NUMPY[dtype])
    b = rng.standard_normal((k, n)).astype(NUMPY[dtype])
    a[3, 100] = np.inf
    b[200, 7] = np.nan
    for width in widths():
        fn = gemm(dtype, width if dtype == "f32" else width // 2)
        whole = np.empty((m, n), NUMPY[dtype])
        call(fn, a, b, whole)
        rows, cols = [0, 1, 38, 75, 140, m], [0, 17, 150, 299, n]
        split = np.empty((m, n), NUMPY[dtype])
        for i0, i1 in zip(rows, rows[1:], strict=False):
            for j0, j1 in zip(cols, cols[1:], strict=False):
                call(fn, a[i0:i1], b[:, j0:j1], split[i0:i1, j0:j1])
        np.testing.assert_array_equal(bits(split), bits(whole))
        by_rows = np.empty((m, n), NUMPY[dtype])
        for i0, i1 in zip(rows, rows[1:], strict=False):
            call(fn, a[i0:i1], b, by_rows[i0:i1])
        np.testing.assert_array_equal(bits(by_rows), bits(whole))


def test_vector_widths_agree_bit_for_bit():
    # the same chain whatever the tile shapes: AVX2 and AVX-512 code give the same bits
    if len(widths()) < 2:
        pytest.skip("one vector width on this machine")
    rng = np.random.default_rng(12)
    a = rng.standard_normal((70, 290)).astype(np.float32)
    b = rng.standard_normal((290, 333)).astype(np.float32)
    results = []
    for width in widths():
        c = np.empty((70, 333), np.float32)
        call(gemm("f32", width), a, b, c)
        results.append(c)
    np.testing.assert_array_equal(bits(results[0]), bits(results[1]))


def test_concurrent_calls_on_disjoint_blocks():
    # ctypes drops the GIL during the call: the threads run the kernel at the same time
    # on their own row blocks, each with its packing buffer on its own stack
    fn = gemm("f32", host_vector_width())
    rng = np.random.default_rng(13)
    a = rng.standard_normal((4 * 61, 400)).astype(np.float32)
    b = rng.standard_normal((400, 300)).astype(np.float32)
    whole = np.empty((4 * 61, 300), np.float32)
    call(fn, a, b, whole)
    split = np.empty_like(whole)

    def work(t: int) -> None:
        for _ in range(5):
            call(fn, a[61 * t : 61 * (t + 1)], b, split[61 * t : 61 * (t + 1)])

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    np.testing.assert_array_equal(bits(split), bits(whole))
