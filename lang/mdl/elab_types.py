"""Declared types in elaboration: dtypes, dim expressions, matching against declarations.

Part of the elaborator (elaborate.py): a mixin of the `Elaborator` class.
"""

from __future__ import annotations

import difflib
from typing import Any

from .diagnostics import Label
from .dims import Dim
from .elab_scope import Scope
from .shapes import MatchError, Variadic, Wildcard, match_shape
from .span import Span
from .syntax import ast
from .types import DType
from .values import POISON, Tensor, describe

MAX_CT_INT = 2**62


class TypesMixin:
    # ------------------------------------------------------------------ types
    def dtype_of(self, ident: ast.Ident) -> Any:
        d = DType.parse(ident.name)
        if d is None:
            close = difflib.get_close_matches(ident.name, [x.value for x in DType], n=1)
            return self.err(
                "E0116",
                f"unknown dtype `{ident.name}`",
                ident.span,
                help=f"did you mean `{close[0]}`?"
                if close
                else "dtypes are f16, bf16, f32, f64, i32, i64 and bool",
            )
        return d

    def eval_dim(self, d: ast.DimExpr, scope: Scope, bind_free: bool = False) -> Any:
        match d:
            case ast.DimInt():
                return self.in_range(Dim.of(d.value), d.span)
            case ast.DimName():
                found, v = scope.lookup(d.name)
                if found:
                    if isinstance(v, bool) or not isinstance(v, int | Dim):
                        return self.err("E0205", f"`{d.name}` is {describe(v)}, not a dim", d.span)
                    return Dim.of(v)
                if bind_free:
                    return Dim.sym(d.name)
                return self.err("E0101", f"unknown dim `{d.name}`", d.span)
            case ast.DimBinary():
                a = self.eval_dim(d.left, scope, bind_free)
                b = self.eval_dim(d.right, scope, bind_free)
                if a is POISON or b is POISON:
                    return POISON
                return self.dim_arith(d.op, a, b, d.span)
            case ast.DimVariadic():
                return self.err("E0011", "`*` dims are only allowed in parameter types", d.span)
        return POISON

    def in_range(self, d: Dim, span: Span) -> Any:
        """Compile-time integers stay within 62 bits, so every backend can hold them."""
        if d.is_const and abs(int(d)) >= MAX_CT_INT:
            return self.err(
                "E0409",
                f"compile-time integer {int(d)} is out of range",
                span,
                notes=(f"compile-time integers must lie within +-2**62 ({MAX_CT_INT})",),
            )
        return d

    def dim_arith(self, op: str, a: Dim, b: Dim, span: Span) -> Any:
        match op:
            case "+":
                return self.in_range(a + b, span)
            case "-":
                return self.in_range(a - b, span)
            case "*":
                return self.in_range(a * b, span)
            case "//" | "/":
                if b.is_const and int(b) == 0:
                    return self.err("E0210", "division by zero in a dim expression", span)
                if op == "//":
                    return a.floordiv(b)
                q = a.exact_div(b)
                if q is None and self.generic and not (a.is_const and b.is_const):
                    return a.floordiv(b)  # may divide once the arguments are known
                if q is None:
                    return self.err(
                        "E0306",
                        f"`{a}` is not divisible by `{b}`",
                        span,
                        help="use `//` for floor division, or choose dims that divide",
                    )
                return q
        return POISON

    def type_pattern(self, t: ast.TensorTypeExpr, scope: Scope) -> Any:
        """A declared tensor type -> (dtype, shape pattern) with unbound names left as symbols."""
        dtype = self.dtype_of(t.dtype)
        items: list[Any] = []
        for d in t.dims:
            match d:
                case ast.DimVariadic():
                    items.append(Variadic(d.name))
                case ast.DimName(name="_"):
                    items.append(Wildcard())
                case _:
                    dim = self.eval_dim(d, scope, bind_free=True)
                    if dim is POISON:
                        return POISON
                    items.append(dim)
        if dtype is POISON:
            return POISON
        if sum(isinstance(i, Variadic) for i in items) > 1:
            return self.err("E0011", "at most one `*` dim per type", t.span)
        return dtype, items

    def check_declared(
        self,
        texpr: ast.TypeExpr,
        v: Tensor,
        scope: Scope,
        bindings: dict[str, Any],
        what: str,
        at: Span | None = None,
    ) -> dict[str, Any] | None:
        """Match a tensor against its declared type; returns the extended dim bindings.

        `at` is where the tensor comes from (a call's argument); the declaration gets a label.
        """
        if isinstance(texpr, ast.ScalarTypeExpr):
            dtype = self.dtype_of(texpr.name)
            if dtype is POISON:
                return None
            pattern: Any = (dtype, [])
        else:
            pattern = self.type_pattern(texpr, scope)
            if pattern is POISON:
                return None
        dtype, items = pattern
        where = at or texpr.span
        decl_label = (Label(texpr.span, "declared here"),) if at is not None else ()
        if v.type.dtype != dtype:
            self.err(
                "E0201",
                f"{what} has dtype `{v.type.dtype}` but is declared `{dtype}`",
                where,
                label=f"found `{v.type}`",
                labels=decl_label,
                help=f"convert it with `cast(x, {dtype})`",
            )
            return None
        try:
            return match_shape(items, v.type.shape, bindings)
        except MatchError as e:
            self.err(
                "E0314",
                f"{what} does not match its declared type `{_type_text(texpr)}`",
                where,
                label=f"found `{v.type}`: {e.message}",
                labels=decl_label,
            )
            return None


def _type_text(t: ast.TypeExpr) -> str:
    if isinstance(t, ast.ScalarTypeExpr):
        return t.name.name
    return f"{t.dtype.name}[{', '.join(_dim_text(d) for d in t.dims)}]"


def _dim_text(d: ast.DimExpr) -> str:
    match d:
        case ast.DimInt():
            return str(d.value)
        case ast.DimName():
            return d.name
        case ast.DimVariadic():
            return f"*{d.name}"
        case ast.DimBinary():
            return f"{_dim_text(d.left)} {d.op} {_dim_text(d.right)}"
    return "?"
