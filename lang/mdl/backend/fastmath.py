"""`--fast-math`: an emitted LLVM module -> the same module with fast-math flags on float ops.

Off by default: without flags LLVM keeps IEEE semantics and the fixed evaluation order
the reference defines, which is what makes native results match it and bit-identical
across thread counts. With `fast_math=True` every float add, sub, mul, div and rem gets
`reassoc nsz arcp contract afn`: reductions may be reordered and vectorized, `a*b+c`
may become one FMA, divisions may become reciprocal multiplies, and library math may be
approximated. `nnan` and `ninf` are deliberately left out: masks written with -inf
(causal attention) and NaN propagation keep working, where full `fast` would let LLVM
assume they never happen and fold them away. Results then differ from the reference in
the last bits (`mdlc verify --fast-math` shows by how much) but stay independent of the
thread count, since the work split never depends on the values. Instructions marked
`!mdl.exact` (the inline f32 exp and erf of vmath.py, whose range reduction relies on
the exact evaluation order) keep their IEEE semantics.
"""

from __future__ import annotations

from typing import Any

from .vmath import EXACT

FLAGS = ("reassoc", "nsz", "arcp", "contract", "afn")
_FLOAT_OPS = frozenset({"fadd", "fsub", "fmul", "fdiv", "frem"})


def apply_fast_math(module: Any) -> int:
    """Add FLAGS to every float binary operation of `module` (an llvmlite.ir.Module);
    returns how many instructions changed."""
    changed = 0
    for fn in module.functions:
        for block in fn.blocks:
            for instr in block.instructions:
                if (
                    getattr(instr, "opname", None) in _FLOAT_OPS
                    and not instr.flags
                    and EXACT not in getattr(instr, "metadata", {})
                ):
                    instr.flags.extend(FLAGS)
                    changed += 1
    return changed
