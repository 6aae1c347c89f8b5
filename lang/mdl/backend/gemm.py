"""The GEMM driver: explicit vector code for `loopir.Gemm`, emitted once per dtype and width.

    void mdl_gemm_f32_w16(A*, B*, C*, i64 m, i64 n, i64 k, i64 lda, i64 ldb, i64 ldc)

computes C = A @ B (row-major, leading dimensions lda/ldb/ldc) with the tiles of
gemm_tile.py: blocks of MR rows by NR = 2 vectors of columns, tiles of 4, 2 and 1 rows
for the row tail, masked one-vector tiles for the column tail.

Large products take the packed path (the loops of BLIS, with the operands' roles
fitted to a broadcast-A kernel), a function of its own: B is cut into blocks of KC
rows by NC columns, each packed into a buffer on that function's stack (256 KB) as
NR-column panels stored one after another, so that a tile streams its panel linearly
from L2 while the MR x KC slice of A it broadcasts stays in L1 across a block row.
The others (few rows to repay the packing, or a B that stays in L2) run the tiles on
the caller's matrices, in short K blocks when B is large (see `_plan`).

Every element is the k-ordered chain of fused multiply-adds starting from 0 in every
path (a K block continues the chain from the value stored in C), so results do not
depend on the path or the blocking, nor on how a caller splits C into row or column
blocks. No global state: concurrent calls on disjoint blocks of C are safe.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import llvmlite.ir as ll

from .gemm_tile import (
    I64,
    align_of,
    const,
    define_tile,
    dtype_name,
    lane_mask,
    masked_load,
)
from .irloops import loop, when

# the packed B block (malloc'd per packed call): it lives in L2 (1 MB per Zen 5 core) with room for A and C
PACK_BYTES = 256 * 1024
KC = 256  # rows of a B block: the MR x KC slice of A (8 KB in f32) stays in L1 (48 KB)
PACK_MIN_ROWS = 32  # fewer rows reuse a packed block too little to pay for packing it
PACK_ALWAYS_ROWS = 128  # ... and this many repay it even when B fits in L2
PACK_MIN_B_BYTES = 1 << 20  # B beyond L2: unpacked, each block row would read it from L3
STREAM_MIN_B_BYTES = 512 << 10  # an unpacked B this large is read in short K blocks:
DIRECT_KC_MIN = 8  # 8 rows of B for one row of A (a matrix-vector product)
DIRECT_KC_PER_ROW = 2  # ... and 2 more per row of A, to amortize reloading C


def rows_per_block(width: int) -> int:
    # accumulators (2 MR vectors) + 2 B vectors + 1 broadcast must fit the register file:
    # 16 registers with AVX2 (width 8 f32), 32 with AVX-512 (width 16)
    return 8 if width >= 16 else 6


def block_columns(t: ll.Type, width: int) -> int:
    """NC: columns of a packed B block, a whole number of NR panels within PACK_BYTES."""
    nr = 2 * width
    size = 4 if t == ll.FloatType() else 8
    return PACK_BYTES // (KC * size) // nr * nr


def define_gemm(m: ll.Module, t: ll.Type, width: int, indirect: bool = False) -> ll.Function:
    """`indirect`: a last argument `i64* boff`, B's row k at B + boff[k] (convolutions
    read their input in place through it); such products are never packed."""
    name = f"mdl_gemm_{dtype_name(t)}_w{width}" + ("_ind" if indirect else "")
    if name in m.globals:
        return m.globals[name]
    fn = _declare(m, name, t, [I64.as_pointer()] if indirect else [])
    blocks = _define_blocks(m, t, width, indirect)
    if indirect:
        rows, cols, depth = fn.args[3:6]
        bld = ll.IRBuilder(fn.append_basic_block("entry"))
        _, direct_kc = _plan(bld, t, width, rows, cols, depth)
        null = ll.Constant(t.as_pointer(), None)
        bld.call(blocks, [*fn.args[:9], direct_kc, cols, null, fn.args[9]])
        bld.ret_void()
        return fn
    packed = _define_packed(m, t, width, blocks)
    rows, cols, depth = fn.args[3:6]
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    pack, direct_kc = _plan(bld, t, width, rows, cols, depth)
    with bld.if_else(pack) as (then, otherwise):
        with then:
            bld.call(packed, list(fn.args))
        with otherwise:
            null = ll.Constant(t.as_pointer(), None)
            bld.call(blocks, [*fn.args, direct_kc, cols, null])
    bld.ret_void()
    return fn


def _define_packed(m: ll.Module, t: ll.Type, width: int, blocks: ll.Function) -> ll.Function:
    """The packed path: the packing buffer comes from malloc, not the stack (a caller's
    thread may have a small stack, and there are no stack probes); if malloc fails, the
    product runs unpacked, which computes the same bits."""
    fn = _declare(m, f"mdl_gemm_{dtype_name(t)}_w{width}_packed", t, [])
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    nc = block_columns(t, width)
    i8p = ll.IntType(8).as_pointer()
    malloc = m.globals.get("malloc") or ll.Function(m, ll.FunctionType(i8p, [I64]), "malloc")
    free = m.globals.get("free") or ll.Function(m, ll.FunctionType(ll.VoidType(), [i8p]), "free")
    size = KC * nc * (4 if t == ll.FloatType() else 8) + 64
    raw = bld.call(malloc, [const(size)])
    with bld.if_else(bld.icmp_unsigned("==", raw, ll.Constant(i8p, None))) as (failed, got):
        with failed:
            bld.call(blocks, [*fn.args, const(KC), fn.args[4], ll.Constant(t.as_pointer(), None)])
        with got:
            at = bld.ptrtoint(raw, I64)
            aligned = bld.and_(bld.add(at, const(63)), const(-64))
            buffer = bld.inttoptr(aligned, t.as_pointer())
            bld.call(blocks, [*fn.args, const(KC), const(nc), buffer])
            bld.call(free, [raw])
    bld.ret_void()
    return fn


def _declare(m: ll.Module, name: str, t: ll.Type, extra: list[ll.Type]) -> ll.Function:
    """void name(A*, B*, C*, i64 m, n, k, lda, ldb, ldc, *extra)"""
    p = t.as_pointer()
    fn = ll.Function(m, ll.FunctionType(ll.VoidType(), [p, p, p] + [I64] * 6 + extra), name)
    fn.linkage = "internal"
    for arg in fn.args[:3]:
        arg.add_attribute("noalias")
    return fn


def _define_blocks(m: ll.Module, t: ll.Type, width: int, indirect: bool = False) -> ll.Function:
    """`blocks(A, B, C, m, n, k, lda, ldb, ldc, kblock, nblock, packed)`: C = A @ B in
    blocks of kblock rows by nblock columns of B. The tiles read each block from `packed`
    after packing it there, or from B itself when `packed` is null. (Copying A's MR x KC
    slices too, out of the cache sets their rows share at lda = 1024, was measured:
    5-10% slower, the copy costing more than the conflicts.)"""
    p = t.as_pointer()
    name = f"mdl_gemm_{dtype_name(t)}_w{width}_blocks" + ("_ind" if indirect else "")
    extra = [I64.as_pointer()] if indirect else []
    fn = _declare(m, name, t, [I64, I64, p, *extra])
    fn.attributes.add("noinline")  # one copy for both paths
    a, b, c, rows, cols, depth, lda, ldb, ldc, kblock, nblock, packed = fn.args[:12]
    boff = fn.args[12] if indirect else None
    mr, nr = rows_per_block(width), 2 * width
    heights = _row_tiles(mr)
    full_tiles = [define_tile(m, t, width, r, 2, False, indirect) for r in heights]
    tail_tiles = [define_tile(m, t, width, r, 1, True, indirect) for r in heights]
    bld = ll.IRBuilder(fn.append_basic_block("entry"))
    pack = bld.icmp_unsigned("!=", packed, ll.Constant(p, None))

    def column_block(bld: ll.IRBuilder, jc: Any) -> None:
        nc = _min(bld, nblock, bld.sub(cols, jc))
        full = bld.sub(nc, bld.srem(nc, const(nr)))
        left = bld.sub(nc, full)
        # a do-while over K blocks: k = 0 still runs once, so that C is set to zeros
        before = bld.block
        head = fn.append_basic_block("kblock")
        done = fn.append_basic_block("kblocks_done")
        bld.branch(head)
        bld.position_at_end(head)
        pc = bld.phi(I64)
        pc.add_incoming(const(0), before)
        kc = _min(bld, kblock, bld.sub(depth, pc))
        if boff is not None:  # row offsets from the table, from row pc on; never packed
            source = bld.gep(b, [jc])
            rows_at = bld.gep(boff, [pc])
        else:
            source = bld.gep(b, [bld.add(bld.mul(pc, ldb), jc)])
            when(
                fn, bld, pack, lambda bld: _pack(m, fn, bld, t, width, source, ldb, packed, kc, nc)
            )
        panels = bld.select(pack, packed, source)
        panel_stride = bld.select(pack, const(nr), ldb)
        panel_step = bld.select(pack, kc, const(1))  # panel j starts at j * panel_step
        accumulate = bld.icmp_signed(">", pc, const(0))

        def row_block(bld: ll.IRBuilder, i0: Any) -> Any:
            """The tiles of the rows from i0, as many as the tallest tile that fits
            (MR, else 4, 2, 1: a row tail in binary); returns that height."""
            fits = [bld.icmp_signed(">=", bld.sub(rows, i0), const(r)) for r in heights[:-1]]
            height, full_tile, tail_tile = const(heights[-1]), full_tiles[-1], tail_tiles[-1]
            for k in reversed(range(len(fits))):
                height = bld.select(fits[k], const(heights[k]), height)
                full_tile = bld.select(fits[k], full_tiles[k], full_tile)
                tail_tile = bld.select(fits[k], tail_tiles[k], tail_tile)
            a_rows = bld.gep(a, [bld.add(bld.mul(i0, lda), pc)])
            c_rows = bld.gep(c, [bld.add(bld.mul(i0, ldc), jc)])

            def call(bld: ll.IRBuilder, tile: Any, j: Any, inner: Any, ncols: Any) -> None:
                """The tile for columns j + inner ..., where j starts a panel."""
                panel = bld.gep(panels, [bld.add(bld.mul(j, panel_step), inner)])
                c_at = bld.gep(c_rows, [bld.add(j, inner)])
                args = [a_rows, lda, panel, panel_stride, c_at, ldc, kc, accumulate, ncols]
                bld.call(tile, args + ([rows_at] if boff is not None else []))

            zero = const(0)
            loop(fn, bld, zero, full, nr, lambda bld, j: call(bld, full_tile, j, zero, zero))
            # a column tail of up to 2 vectors: one full vector, then a masked one
            wide = bld.icmp_signed(">", left, const(width))
            when(fn, bld, wide, lambda bld: call(bld, tail_tile, full, zero, const(width)))
            inner = bld.select(wide, const(width), zero)
            rest = bld.sub(left, inner)
            has_rest = bld.icmp_signed(">", rest, zero)
            when(fn, bld, has_rest, lambda bld: call(bld, tail_tile, full, inner, rest))
            return height

        _loop_by(fn, bld, rows, row_block)
        nxt = bld.add(pc, kblock)
        pc.add_incoming(nxt, bld.block)
        bld.cbranch(bld.icmp_signed("<", nxt, depth), head, done)
        bld.position_at_end(done)

    loop(fn, bld, const(0), cols, nblock, column_block)
    bld.ret_void()
    return fn


def _loop_by(
    fn: ll.Function, bld: ll.IRBuilder, stop: Any, body: Callable[[ll.IRBuilder, Any], Any]
) -> None:
    """for (i = 0; i < stop; i += body(i)) — body returns its own step."""
    before = bld.block
    head = fn.append_basic_block("rows")
    inside = fn.append_basic_block("row_block")
    done = fn.append_basic_block("rows_done")
    bld.branch(head)
    bld.position_at_end(head)
    i = bld.phi(I64)
    i.add_incoming(const(0), before)
    bld.cbranch(bld.icmp_signed("<", i, stop), inside, done)
    bld.position_at_end(inside)
    step = body(bld, i)
    i.add_incoming(bld.add(i, step), bld.block)
    bld.branch(head)
    bld.position_at_end(done)


def _plan(
    bld: ll.IRBuilder, t: ll.Type, width: int, rows: Any, cols: Any, depth: Any
) -> tuple[Any, Any]:
    """(pack B?, rows of a K block when not) for this product, at run time.

    Packing costs a pass over B, repaid by the MR-row block rows that reuse each packed
    block, and is needed when B is too large to stay in L2 between those block rows:
    the tiles would stream it from L3 every time, at a stride of ldb, which is worst at
    ldb = 1024, 2048...: every row of a panel lands in the same L1 set. Unpacked, a B
    too large for L1 and L2 is still cut into short K blocks, so that the tiles of a
    block row read a few rows of B panel after panel (along the rows, as the prefetchers
    like) instead of walking down whole columns; with one panel or fewer, or a B that
    stays in the caches, that would only cost reloads of C.
    """
    nr = 2 * width
    size = 4 if t == ll.FloatType() else 8
    b_bytes = bld.mul(bld.mul(depth, cols), const(size))
    worth = bld.or_(
        bld.icmp_signed(">=", rows, const(PACK_ALWAYS_ROWS)),
        bld.icmp_signed(">=", b_bytes, const(PACK_MIN_B_BYTES)),
    )
    pack = bld.and_(
        bld.and_(bld.icmp_signed(">=", rows, const(PACK_MIN_ROWS)), worth),
        bld.icmp_signed(">", cols, const(nr)),
    )
    streamed = _max(bld, bld.mul(rows, const(DIRECT_KC_PER_ROW)), const(DIRECT_KC_MIN))
    stream = bld.and_(
        bld.icmp_signed(">", cols, const(nr)),
        bld.icmp_signed(">=", b_bytes, const(STREAM_MIN_B_BYTES)),
    )
    return pack, bld.select(stream, _min(bld, streamed, depth), depth)


def _row_tiles(mr: int) -> list[int]:
    """Row counts of the tiles: MR, then the powers of two below it, largest first."""
    return [mr] + [1 << s for s in range(mr.bit_length() - 1, -1, -1) if 1 << s < mr]


def _min(bld: ll.IRBuilder, x: Any, y: Any) -> Any:
    return bld.select(bld.icmp_signed("<", x, y), x, y)


def _max(bld: ll.IRBuilder, x: Any, y: Any) -> Any:
    return bld.select(bld.icmp_signed(">", x, y), x, y)


def _pack(
    m: ll.Module,
    fn: ll.Function,
    bld: ll.IRBuilder,
    t: ll.Type,
    width: int,
    source: Any,
    ldb: Any,
    packed: Any,
    kc: Any,
    nc: Any,
) -> None:
    """Copy B[:kc, :nc] (leading dimension ldb) into NR-column panels of kc x NR, one
    after another; the last panel's columns past nc hold zeros."""
    nr = 2 * width
    vec = ll.VectorType(t, width)
    vp = vec.as_pointer()
    align = align_of(t)
    zero = ll.Constant(vec, [ll.Constant(t, 0.0)] * width)
    full = bld.sub(nc, bld.srem(nc, const(nr)))
    left = bld.sub(nc, full)
    masks = [lane_mask(bld, width, bld.sub(left, const(h * width))) for h in range(2)]

    def row(bld: ll.IRBuilder, kk: Any) -> None:
        src = bld.gep(source, [bld.mul(kk, ldb)])
        dst = bld.gep(packed, [bld.mul(kk, const(nr))])

        def panel(bld: ll.IRBuilder, j: Any) -> None:
            for h in range(2):
                x = bld.load(
                    bld.bitcast(bld.gep(src, [bld.add(j, const(h * width))]), vp), align=align
                )
                at = bld.add(bld.mul(j, kc), const(h * width))
                bld.store(x, bld.bitcast(bld.gep(dst, [at]), vp), align=align)

        loop(fn, bld, const(0), full, nr, panel)

        def tail(bld: ll.IRBuilder) -> None:
            for h in range(2):
                ptr = bld.bitcast(bld.gep(src, [bld.add(full, const(h * width))]), vp)
                x = masked_load(m, bld, ptr, masks[h], zero, align)
                at = bld.add(bld.mul(full, kc), const(h * width))
                bld.store(x, bld.bitcast(bld.gep(dst, [at]), vp), align=align)

        when(fn, bld, bld.icmp_signed(">", left, const(0)), tail)

    loop(fn, bld, const(0), kc, 1, row)
