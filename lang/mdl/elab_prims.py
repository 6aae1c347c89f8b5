"""Calls of primitives in elaboration: bind, settle scalars, fold constants, emit a node.

Part of the elaborator (elaborate.py): a mixin of the `Elaborator` class.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .dims import Dim
from .elab_scope import Frame
from .primitives import bind, resolve, settle_scalars
from .primitives.registry import REGISTRY, Scalar, ShapeError
from .span import Span
from .types import TensorType
from .values import Tensor

_FOLDABLE = frozenset(
    {
        "exp",
        "log",
        "sqrt",
        "rsqrt",
        "tanh",
        "erf",
        "sigmoid",
        "sin",
        "cos",
        "abs",
        "floor",
        "ceil",
        "neg",
        "add",
        "sub",
        "mul",
        "div",
        "pow",
        "maximum",
        "minimum",
    }
)


class PrimsMixin:
    # ------------------------------------------------------------------ primitives
    def call_primitive(
        self,
        name: str,
        args: list[tuple[Any, Span]],
        kwargs: dict[str, tuple[Any, Span]],
        span: Span,
        frame: Frame | None = None,
    ) -> Any:
        prim = resolve(name, len(args), frozenset(kwargs)) or REGISTRY.get(name)
        if prim is None:
            return self.err("E0115", f"`{name}` cannot be called like this", span)
        typed: dict[int, Tensor] = {}
        pos_in: list[Any] = []
        for v, _ in args:
            pos_in.append(self._to_bind(v, typed))
        kw_in = {k: self._to_bind(v, typed) for k, (v, _) in kwargs.items()}
        try:
            operands, attrs = bind(prim, pos_in, kw_in, name=name)
        except ShapeError as se:
            return self._shape_error(se, args, kwargs, span)
        if prim.name in _FOLDABLE and operands and all(isinstance(o, Scalar) for o in operands):
            return self._fold(prim, operands, attrs, span)
        try:
            settled = settle_scalars(operands)
        except ShapeError as se:
            return self._shape_error(se, args, kwargs, span)
        values: list[Any] = []
        for o, t in zip(operands, settled, strict=True):
            if isinstance(o, Scalar):
                arr = np.asarray(o.value).astype(t.dtype.numpy)
                values.append(Tensor(self.graph.const(arr, span, self.scope_path)))
            else:
                values.append(typed[id(o)])
        return self.emit(prim.name, values, attrs, span, frame, args=args, kwargs=kwargs)

    def _to_bind(self, v: Any, typed: dict[int, Tensor]) -> Any:
        if isinstance(v, Tensor):
            t = TensorType(v.type.dtype, v.type.shape)  # a fresh object, so that identity maps back
            typed[id(t)] = v
            return t
        if isinstance(v, Dim) and v.is_const:
            return int(v)
        if isinstance(v, list | tuple):
            return type(v)(self._to_bind(x, typed) for x in v)
        return v

    def _fold(self, prim: Any, operands: list[Scalar], attrs: dict[str, Any], span: Span) -> Any:
        arrays = [np.asarray(o.value, dtype=np.float64) for o in operands]
        with np.errstate(all="ignore"):
            (out,) = prim.evaluate(arrays, attrs)
        value = float(out)
        if (
            all(isinstance(o.value, int) and not isinstance(o.value, bool) for o in operands)
            and prim.name in ("add", "sub", "mul", "neg", "abs", "maximum", "minimum")
            and value.is_integer()
        ):
            return Dim.of(int(value))
        return value

    def emit(
        self,
        op: str,
        values: list[Tensor],
        attrs: dict[str, Any],
        span: Span,
        frame: Frame | None = None,
        args=None,
        kwargs=None,
    ) -> Any:
        prim = REGISTRY[op]
        try:
            outs = prim.infer([v.type for v in values], attrs)
        except ShapeError as se:
            if args is not None:
                from .primitives import relocate

                se = relocate(se, prim, len(args), (kwargs or {}).keys())
            return self._shape_error(se, args or [], kwargs or {}, span)
        node = self.graph.add_node(
            op, [v.value for v in values], tuple(outs), attrs, self.scope_path, span
        )
        res = [Tensor(v) for v in node.outputs]
        return res[0] if len(res) == 1 else tuple(res)

    def _shape_error(self, se: ShapeError, args, kwargs, span: Span) -> Any:
        where = span
        if se.arg is not None and se.arg < len(args):
            where = args[se.arg][1]
        elif se.kwarg is not None and se.kwarg in kwargs:
            where = kwargs[se.kwarg][1]
        return self.err(
            se.code,
            se.message,
            where,
            label=se.label,
            notes=tuple(se.notes),
            help=se.help,
        )
