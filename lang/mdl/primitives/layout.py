"""Layout primitives: tensor types and shape attributes -> result types; arrays -> arrays.

reshape, transpose, expand, concat, stack, split and slice move data without
arithmetic; arange and full create tensors from attributes alone. Shape rules
are symbolic: `reshape` proves that element counts agree as polynomials, and
an output dim may be an expression such as `(T + 1) // 2`.

Results of the reference may be numpy views of their inputs; nothing may write
to them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..dims import Dim, dim_product
from ..shapes import normalize_axis, num_elements, shape_str
from ..types import DType, TensorType
from .elementwise import known_int, no_flops, positive_dims, same_dtype
from .reduce import normalize_axes
from .registry import Param, Primitive, ShapeError, register


def _axis(op: str, axis: Any, rank: int) -> int:
    return normalize_axes(op, rank, (axis,), "axis")[0]


# ---------------------------------------------------------------------------
# reshape


def _reshape_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    (x,) = operands
    requested = tuple(Dim.of(d) for d in attrs["shape"])
    holes = [i for i, d in enumerate(requested) if d == -1]
    if len(holes) > 1:
        raise ShapeError(
            "E0311",
            f"`reshape` to {shape_str(requested)} has more than one -1",
            kwarg="shape",
            label="only one dimension can be inferred",
        )
    known = positive_dims("reshape", "shape", (d for d in requested if d != -1))
    total, product = num_elements(x.shape), dim_product(known)
    if holes:
        inferred = total.exact_div(product)
        if inferred is None:
            constant = total.is_const and product.is_const
            raise ShapeError(
                "E0307" if constant else "E0311",
                f"cannot reshape {x} into {shape_str(requested)}",
                kwarg="shape",
                label=f"{total} elements are not "
                + ("a multiple" if constant else "provably a multiple")
                + f" of {product}",
            )
        shape = list(requested)
        shape[holes[0]] = inferred
        return (TensorType(x.dtype, tuple(shape)),)
    if product != total:
        raise ShapeError(
            "E0307",
            f"`reshape` of {x} into {shape_str(requested)} changes the number of elements",
            kwarg="shape",
            label=f"{total} elements != {product}",
        )
    return (TensorType(x.dtype, known),)


def _reshape_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    return (np.reshape(arrays[0], tuple(int(d) for d in attrs["shape"])),)


register(
    Primitive(
        name="reshape",
        params=(Param("x", "tensor"), Param("shape", "dims", doc="the new dims; one may be -1")),
        infer=_reshape_infer,
        evaluate=_reshape_eval,
        doc="the same elements in row-major order under a new shape; one dim may be -1 (inferred)",
        flops=no_flops,
    )
)


# ---------------------------------------------------------------------------
# transpose


def _perm(x_rank: int, perm: Any) -> tuple[int, ...]:
    if perm is None:
        return tuple(reversed(range(x_rank)))
    perm = tuple(known_int("transpose", "perm", p) for p in perm)
    example = (*range(x_rank - 2), x_rank - 1, x_rank - 2) if x_rank >= 2 else tuple(range(x_rank))
    try:
        norm = tuple(normalize_axis(p, x_rank) for p in perm)
    except IndexError:
        norm = ()
    if len(perm) != x_rank or sorted(norm) != list(range(x_rank)):
        raise ShapeError(
            "E0308",
            f"`{perm}` is not a permutation of the {x_rank} axes of the operand",
            kwarg="perm",
            label=f"expected each of 0..{x_rank - 1} once" if x_rank else "expected no axes",
            help=f"for example `transpose(x, {', '.join(map(str, example))})`"
            if x_rank >= 2
            else None,
        )
    return norm


def _transpose_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    (x,) = operands
    perm = _perm(x.rank, attrs["perm"])
    return (TensorType(x.dtype, tuple(x.shape[p] for p in perm)),)


def _transpose_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    (x,) = arrays
    return (np.transpose(x, _perm(x.ndim, attrs["perm"])),)


register(
    Primitive(
        name="transpose",
        params=(
            Param("x", "tensor"),
            Param("perm", "ints", None, doc="output axis i is input axis perm[i]; none reverses"),
        ),
        infer=_transpose_infer,
        evaluate=_transpose_eval,
        doc="permute the axes: output axis i is input axis perm[i] (none: reverse them)",
        flops=no_flops,
        extra={"canonical": lambda ranks, attrs: {**attrs, "perm": _perm(ranks[0], attrs["perm"])}},
    )
)


# ---------------------------------------------------------------------------
# expand


def _expand_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    (x,) = operands
    target = tuple(Dim.of(d) for d in attrs["shape"])
    offset = len(target) - x.rank
    if offset < 0:
        raise ShapeError(
            "E0304",
            f"`expand` cannot lower the rank of {x} to {shape_str(target)}",
            kwarg="shape",
            label=f"rank {len(target)} < {x.rank}",
        )
    out = []
    for i, want in enumerate(target):
        have = x.shape[i - offset] if i >= offset else None
        if want == -1:
            if have is None:
                raise ShapeError(
                    "E0311",
                    f"-1 in the new leading axis {i} of `expand` has nothing to keep",
                    kwarg="shape",
                    label="-1 keeps an existing dimension",
                )
            out.append(have)
            continue
        positive_dims("expand", "shape", (want,))
        if have is not None and have != want and have != 1:
            raise ShapeError(
                "E0301",
                f"cannot expand {x} to {shape_str(target)}",
                kwarg="shape",
                label=f"axis {i}: {have} cannot become {want}",
                help="only dimensions of size 1 can be expanded",
            )
        out.append(want)
    return (TensorType(x.dtype, tuple(out)),)


def _expand_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    (x,) = arrays
    target = [int(d) for d in attrs["shape"]]
    offset = len(target) - x.ndim
    target = [x.shape[i - offset] if d == -1 else d for i, d in enumerate(target)]
    # a copy: broadcast_to gives a read-only view that aliases every repeat
    return (np.broadcast_to(x, target).copy(),)


register(
    Primitive(
        name="expand",
        params=(Param("x", "tensor"), Param("shape", "dims", doc="the target shape")),
        infer=_expand_infer,
        evaluate=_expand_eval,
        doc="repeat size-1 axes and add leading axes to reach `shape` (numpy broadcast_to); "
        "-1 keeps a dimension",
        flops=no_flops,
    )
)


# ---------------------------------------------------------------------------
# concat and stack


def _joinable(op: str, operands: list[TensorType]) -> TensorType:
    """The first operand, after checking all have its dtype and rank."""
    if not operands:
        raise ShapeError("E0112", f"`{op}` needs at least one tensor", label="no tensors")
    same_dtype(op, operands, tuple(range(len(operands))))
    first = operands[0]
    for i, t in enumerate(operands[1:], 1):
        if t.rank != first.rank:
            raise ShapeError(
                "E0304",
                f"`{op}` operands have different ranks: {first} and {t}",
                arg=i,
                label=f"rank {t.rank}, expected {first.rank}",
            )
    return first


def _mismatch(op: str, first: TensorType, i: int, t: TensorType, axis: int, note: str):
    return ShapeError(
        "E0303",
        f"`{op}` operands differ in dimension {axis}: {first} and {t}",
        arg=i,
        label=f"dimension {axis} is {t.shape[axis]}, expected {first.shape[axis]}",
        notes=(note,),
    )


def _concat_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    first = _joinable("concat", operands)
    if first.rank == 0:
        raise ShapeError(
            "E0304",
            "`concat` cannot join 0-d tensors",
            arg=0,
            label=f"{first}",
            help="use `stack` to join scalars into a vector",
        )
    axis = _axis("concat", attrs["axis"], first.rank)
    for i, t in enumerate(operands[1:], 1):
        for j in range(first.rank):
            if j != axis and t.shape[j] != first.shape[j]:
                raise _mismatch("concat", first, i, t, j, f"only the joined axis {axis} may differ")
    joined = Dim.of(0)
    for t in operands:
        joined = joined + t.shape[axis]
    shape = (*first.shape[:axis], joined, *first.shape[axis + 1 :])
    return (TensorType(first.dtype, shape),)


def _stack_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    first = _joinable("stack", operands)
    axis = _axis("stack", attrs["axis"], first.rank + 1)
    for i, t in enumerate(operands[1:], 1):
        for j in range(first.rank):
            if t.shape[j] != first.shape[j]:
                raise _mismatch("stack", first, i, t, j, "stacked tensors have the same shape")
    shape = (*first.shape[:axis], Dim.of(len(operands)), *first.shape[axis:])
    return (TensorType(first.dtype, shape),)


def _join_canonical(op: str, extra_axis: int):
    def canonical(ranks: list[int], attrs: dict[str, Any]) -> dict[str, Any]:
        if not ranks:
            return attrs
        return {**attrs, "axis": _axis(op, attrs["axis"], ranks[0] + extra_axis)}

    return canonical


def _concat_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    return (np.concatenate(arrays, axis=attrs["axis"]),)


def _stack_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    return (np.stack(arrays, axis=attrs["axis"]),)


register(
    Primitive(
        name="concat",
        params=(Param("xs", "tensors"), Param("axis", "int", 0)),
        infer=_concat_infer,
        evaluate=_concat_eval,
        doc="join tensors of one dtype along an existing axis; other dims must agree",
        flops=no_flops,
        extra={"canonical": _join_canonical("concat", 0)},
    )
)
register(
    Primitive(
        name="stack",
        params=(Param("xs", "tensors"), Param("axis", "int", 0)),
        infer=_stack_infer,
        evaluate=_stack_eval,
        doc="join same-shaped tensors of one dtype along a new axis",
        flops=no_flops,
        extra={"canonical": _join_canonical("stack", 1)},
    )
)


# ---------------------------------------------------------------------------
# split


def _split_parts(x: TensorType, axis: int, attrs: dict[str, Any]) -> tuple[Dim, ...]:
    """The size of every part along `axis`, from `sections` (equal parts) or `sizes`."""
    sections, sizes = attrs["sections"], attrs.get("sizes")
    if isinstance(sections, list | tuple):  # split(x, [64, 32]) gives the sizes positionally
        sections, sizes = (None, sections) if sizes is None else (sections, sizes)
    if sections is None and sizes is None:
        raise ShapeError(
            "E0112",
            "missing argument `sections` in call to `split`",
            label="how many parts?",
            help="give a number of equal parts, or their sizes with `sizes=[...]`",
        )
    if sections is not None and sizes is not None:
        raise ShapeError(
            "E0114",
            "`split` takes a number of `sections` or their `sizes`, not both",
            kwarg="sizes",
            label="`sections` given too",
        )
    dim = x.shape[axis]
    if sizes is not None:
        parts = positive_dims("split", "sizes", sizes)
        total = Dim.of(0)
        for part in parts:
            total = total + part
        if total != dim:
            raise ShapeError(
                "E0303",
                f"`split` sizes add up to {total}, but axis {axis} of {x} has {dim}",
                kwarg="sizes",
                label=f"{total} != {dim}",
            )
        return parts
    count = known_int("split", "sections", sections)
    if count < 1:
        raise ShapeError(
            "E0409",
            f"`split` into {count} parts",
            kwarg="sections",
            label="expected at least 1 part",
        )
    part = dim.exact_div(count)
    if part is None:
        provably = "" if dim.is_const else "provably "
        raise ShapeError(
            "E0306",
            f"cannot split dimension {dim} of {x} into {count} equal parts",
            kwarg="sections",
            label=f"{dim} is not {provably}divisible by {count}",
            help="give unequal parts with `sizes=[...]`" if dim.is_const else None,
        )
    return (part,) * count


def _split_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    (x,) = operands
    axis = _axis("split", attrs["axis"], x.rank)
    parts = _split_parts(x, axis, attrs)
    return tuple(
        TensorType(x.dtype, (*x.shape[:axis], part, *x.shape[axis + 1 :])) for part in parts
    )


def _split_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    (x,) = arrays
    concrete = TensorType(DType.from_numpy(x.dtype), tuple(Dim.of(n) for n in x.shape))
    axis = _axis("split", attrs["axis"], x.ndim)
    sizes = [int(part) for part in _split_parts(concrete, axis, attrs)]
    return tuple(np.split(x, np.cumsum(sizes)[:-1], axis=axis))


def _split_canonical(ranks: list[int], attrs: dict[str, Any]) -> dict[str, Any]:
    attrs = {**attrs, "axis": _axis("split", attrs["axis"], ranks[0])}
    sections = attrs["sections"]
    if isinstance(sections, list | tuple) and attrs.get("sizes") is None:
        attrs["sections"], attrs["sizes"] = None, tuple(Dim.of(d) for d in sections)
    elif isinstance(sections, Dim):
        attrs["sections"] = known_int("split", "sections", sections)
    return attrs


register(
    Primitive(
        name="split",
        params=(
            Param("x", "tensor"),
            Param("sections", "any", None, doc="a number of equal parts (or a list of sizes)"),
            Param("axis", "int", 0),
            Param("sizes", "any", None, doc="the size of each part (a list of dims)"),
        ),
        infer=_split_infer,
        evaluate=_split_eval,
        doc="cut `x` along `axis` into `sections` equal parts or parts of `sizes`; one output "
        "per part",
        flops=no_flops,
        extra={"canonical": _split_canonical},
    )
)


# ---------------------------------------------------------------------------
# slice (written `x[a:b:s]`; the checker normalizes the bounds)


def _slice_infer(operands: list[TensorType], attrs: dict[str, Any]) -> tuple[TensorType, ...]:
    (x,) = operands
    for param in ("starts", "stops", "steps"):
        if len(attrs[param]) != x.rank:
            raise ShapeError(
                "E0310",
                f"`slice` of {x} needs one entry per axis in `{param}`, found {len(attrs[param])}",
                kwarg=param,
                label=f"expected {x.rank}",
            )
    out = []
    for axis, (dim, start, stop, step) in enumerate(
        zip(x.shape, attrs["starts"], attrs["stops"], attrs["steps"], strict=True)
    ):
        start, stop = Dim.of(start), Dim.of(stop)
        step = known_int("slice", "steps", step)
        where = f"slice {start}:{stop}:{step} of axis {axis}"
        if step < 1:
            raise ShapeError(
                "E0310", f"{where}: the step must be positive", kwarg="steps", label=f"{step}"
            )
        span, beyond = stop - start, stop - dim
        if (start.is_const and start.value < 0) or (span.is_const and span.value < 0):
            raise ShapeError(
                "E0310", f"{where}: the bounds must satisfy 0 <= start <= stop", kwarg="starts"
            )
        if beyond.is_const and beyond.value > 0:
            raise ShapeError(
                "E0309",
                f"{where} goes past the end of {x}",
                kwarg="stops",
                label=f"{stop} > {dim}",
            )
        if span == 0:
            raise ShapeError(
                "E0313",
                f"{where} is empty",
                kwarg="stops",
                label="no elements",
                notes=("tensors cannot be empty",),
            )
        out.append(span if step == 1 else (span + (step - 1)).floordiv(step))
    return (TensorType(x.dtype, tuple(out)),)


def _slice_eval(arrays: list[np.ndarray], attrs: dict[str, Any]) -> tuple[np.ndarray, ...]:
    (x,) = arrays
    index = tuple(
        slice(int(a), int(b), int(s))
        for a, b, s in zip(attrs["starts"], attrs["stops"], attrs["steps"], strict=True)
    )
    return (x[index],)


register(
    Primitive(
        name="slice",
        params=(
            Param("x", "tensor"),
            Param("starts", "dims", doc="per axis, 0 <= start <= stop"),
            Param("stops", "dims", doc="per axis, stop <= the dimension"),
            Param("steps", "ints", doc="per axis, at least 1"),
        ),
        infer=_slice_infer,
        evaluate=_slice_eval,
        doc="the elements start, start + step, ... below stop on every axis; an axis has "
        "ceil((stop - start) / step) elements",
        flops=no_flops,
    )
)
