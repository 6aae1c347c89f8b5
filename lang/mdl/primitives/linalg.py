"""Matrix product: two tensor types -> the product's type; numpy arrays -> `a @ b`.

numpy `@` semantics: the last two axes are the matrices, leading axes are a
batch that broadcasts; a 1-D left operand is a row vector and a 1-D right
operand a column vector, and their axis is dropped from the result.

Numerics of the reference: np.matmul in the operands' dtype (f16 and bf16 in
f32, rounded once); float accumulation order is BLAS's and unspecified, so
results agree with other backends within a tolerance, not bit for bit. Integer
products wrap.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..shapes import BroadcastError, broadcast_shapes, num_elements
from ..types import DType, TensorType
from .elementwise import NUMERIC, as_result, compute_dtype, require_dtype, same_dtype
from .registry import Param, Primitive, ShapeError, register


def _transpose_help(a: TensorType, b: TensorType, inner: Any) -> str | None:
    """Which operand's transpose would make the product fit, if one would."""
    if b.rank == 2 and b.shape[1] == inner:
        return "transpose the right operand with `.T`"
    if a.rank == 2 and b.rank >= 2 and a.shape[0] == b.shape[-2]:
        return "transpose the left operand with `.T`"
    return None


def _matmul_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    a, b = operands
    dtype = same_dtype("matmul", operands, (0, 1))
    require_dtype("matmul", a, NUMERIC, 0)
    for i, t in enumerate(operands):
        if t.rank == 0:
            raise ShapeError(
                "E0304",
                "`@` needs operands with at least one axis, found a 0-d tensor",
                arg=i,
                label=f"{t}",
                help="use `*` to multiply by a scalar",
            )
    inner_a = a.shape[-1]
    inner_b = b.shape[0] if b.rank == 1 else b.shape[-2]
    if inner_a != inner_b:
        raise ShapeError(
            "E0302",
            "inner dimensions of a matrix product differ",
            label=f"{a} @ {b}: {inner_a} != {inner_b}",
            notes=("`a @ b` needs the last axis of `a` to equal the second-to-last of `b`",),
            help=_transpose_help(a, b, inner_a),
        )
    try:
        batch = broadcast_shapes(a.shape[:-2], b.shape[:-2])
    except BroadcastError as e:
        raise ShapeError(
            "E0301",
            "batch dimensions of a matrix product cannot be broadcast together",
            label=f"{a} @ {b}: {e.left} != {e.right}",
            notes=("the axes before the last two are a batch and broadcast as in numpy",),
        ) from None
    rows = a.shape[-2:-1] if a.rank >= 2 else ()
    cols = b.shape[-1:] if b.rank >= 2 else ()
    return (TensorType(dtype, (*batch, *rows, *cols)),)


def _matmul_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    a, b = arrays
    compute = compute_dtype(a.dtype)
    with np.errstate(all="ignore"):
        value = np.matmul(a.astype(compute, copy=False), b.astype(compute, copy=False))
    return (as_result(value, DType.from_numpy(a.dtype)),)


def _matmul_flops(
    operands: list[TensorType], outputs: tuple[TensorType, ...], attrs: dict[str, Any]
) -> Any:
    # one multiply and one add per output element per step of the inner dimension:
    # 2 * M * N * K * batch
    return num_elements(outputs[0].shape) * operands[0].shape[-1] * 2


register(
    Primitive(
        name="matmul",
        params=(Param("a", "tensor"), Param("b", "tensor")),
        infer=_matmul_infer,
        evaluate=_matmul_eval,
        doc=(
            "matrix product `a @ b` with numpy semantics: batch axes broadcast, a 1-D operand "
            "is a vector whose axis is dropped from the result"
        ),
        flops=_matmul_flops,
    )
)
