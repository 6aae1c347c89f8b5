"""Small control-flow builders for hand-written LLVM IR (the GEMM and the thread pool):
a counted loop and a one-armed if, each leaving the builder after it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import llvmlite.ir as ll

I64 = ll.IntType(64)


def loop(
    fn: ll.Function,
    bld: ll.IRBuilder,
    start: Any,
    stop: Any,
    step: Any,
    body: Callable[[ll.IRBuilder, Any], None],
) -> None:
    """for (i = start; i < stop; i += step) body(i) — leaves `bld` after the loop."""
    if isinstance(step, int):
        step = ll.Constant(I64, step)
    head = fn.append_basic_block("head")
    loop_body = fn.append_basic_block("body")
    done = fn.append_basic_block("done")
    before = bld.block
    bld.branch(head)
    bld.position_at_end(head)
    i = bld.phi(I64)
    i.add_incoming(start, before)
    bld.cbranch(bld.icmp_signed("<", i, stop), loop_body, done)
    bld.position_at_end(loop_body)
    body(bld, i)
    i.add_incoming(bld.add(i, step), bld.block)
    bld.branch(head)
    bld.position_at_end(done)


def when(
    fn: ll.Function, bld: ll.IRBuilder, cond: Any, body: Callable[[ll.IRBuilder], None]
) -> None:
    """if (cond) body() — leaves `bld` after it."""
    then = fn.append_basic_block("then")
    done = fn.append_basic_block("endif")
    bld.cbranch(cond, then, done)
    bld.position_at_end(then)
    body(bld)
    bld.branch(done)
    bld.position_at_end(done)
