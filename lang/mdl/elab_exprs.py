"""Operators and compile-time expressions in elaboration.

Part of the elaborator (elaborate.py): a mixin of the `Elaborator` class.
Tensor operands go to the primitive registry; compile-time values (ints and
dims, floats, bools) are computed here.
"""

from __future__ import annotations

from typing import Any

from .dims import Dim
from .elab_scope import Frame, Scope
from .primitives import OPERATORS
from .syntax import ast
from .values import POISON, RangeVal, Tensor, describe

MAX_UNROLL = 10_000


class ExprsMixin:
    def eval_unary(self, e: ast.Unary, frame: Frame, scope: Scope) -> Any:
        v = self.eval_expr(e.operand, frame, scope)
        if v is POISON:
            return POISON
        if e.op == "not":
            if isinstance(v, bool):
                return not v
            if isinstance(v, Tensor):
                return self.call_primitive("logical_not", [(v, e.operand.span)], {}, e.span)
            return self.err("E0205", f"`not` needs a bool, found {describe(v)}", e.operand.span)
        if isinstance(v, Tensor):
            return self.call_primitive("neg", [(v, e.operand.span)], {}, e.span)
        if isinstance(v, int | float | Dim) and not isinstance(v, bool):
            return -v
        return self.err("E0205", f"cannot negate {describe(v)}", e.operand.span)

    def eval_binary(self, e: ast.Binary, frame: Frame, scope: Scope) -> Any:
        if e.op in ("and", "or"):
            return self.eval_logic(e, frame, scope)
        a = self.eval_expr(e.left, frame, scope)
        b = self.eval_expr(e.right, frame, scope)
        if a is POISON or b is POISON:
            return POISON
        if e.op == "..":
            if not (_is_intlike(a) and _is_intlike(b)):
                return self.err("E0205", "range bounds must be compile-time integers", e.span)
            return RangeVal(Dim.of(a), Dim.of(b))
        if isinstance(a, Tensor) or isinstance(b, Tensor) or e.op == "@":
            before = len(self.diags)
            result = self.call_primitive(
                OPERATORS[e.op],
                [(a, e.left.span), (b, e.right.span)],
                {},
                e.span,
            )
            if e.op == "@" and len(self.diags) == before + 1:
                self.diags[-1] = _with_transpose_fix(self.diags[-1], e)
            return result
        return self.ct_binary(e, a, b)

    def eval_logic(self, e: ast.Binary, frame: Frame, scope: Scope) -> Any:
        a = self.eval_expr(e.left, frame, scope)
        if a is POISON:
            return POISON
        if not isinstance(a, bool):
            return self.err(
                "E0207",
                f"`{e.op}` needs compile-time bools, found {describe(a)}",
                e.left.span,
                help="for bool tensors use `logical_and(a, b)` / `logical_or(a, b)`",
            )
        if (e.op == "and" and not a) or (e.op == "or" and a):
            return a
        b = self.eval_expr(e.right, frame, scope)
        if b is POISON:
            return POISON
        if not isinstance(b, bool):
            return self.err(
                "E0207", f"`{e.op}` needs compile-time bools, found {describe(b)}", e.right.span
            )
        return b

    def ct_binary(self, e: ast.Binary, a: Any, b: Any) -> Any:
        op = e.op
        numeric = (int, float, Dim)
        if op in ("==", "!="):
            eq = _ct_equal(a, b)
            if eq is None and self.generic:
                return POISON  # decided only once the arguments are known
            if eq is None:
                return self.err("E0207", f"cannot decide `{a} {op} {b}` at compile time", e.span)
            return eq if op == "==" else not eq
        if (
            not (isinstance(a, numeric) and isinstance(b, numeric))
            or isinstance(a, bool)
            or isinstance(b, bool)
        ):
            return self.err(
                "E0205", f"`{op}` is not defined for {describe(a)} and {describe(b)}", e.op_span
            )
        if _is_intlike(a) and _is_intlike(b):
            a, b = Dim.of(a), Dim.of(b)
            if op in ("+", "-", "*", "/", "//"):
                return self.dim_arith(op, a, b, e.span)
            if op == "%":
                if not (a.is_const and b.is_const):
                    return self.err("E0204", "`%` needs constant dims", e.span)
                if int(b) == 0:
                    return self.err("E0210", "modulo by zero", e.span)
                return Dim.of(int(a) % int(b))
            if op == "**":
                if not (a.is_const and b.is_const) or int(b) < 0:
                    return self.err(
                        "E0204", "`**` on dims needs constant, non-negative exponents", e.span
                    )
                base, exponent = abs(int(a)), int(b)
                if base > 1 and exponent * base.bit_length() > 64:
                    return self.err("E0409", f"`{a} ** {b}` is out of range", e.span)
                return self.in_range(Dim.of(int(a) ** exponent), e.span)
            if not (a.is_const and b.is_const):
                if self.generic:
                    return POISON
                return self.err("E0207", f"cannot decide `{a} {op} {b}` at compile time", e.span)
        x, y = _to_number(a), _to_number(b)
        if x is None or y is None:
            return self.err("E0204", f"`{a} {op} {b}` needs constant values", e.span)
        try:
            match op:
                case "+":
                    return x + y
                case "-":
                    return x - y
                case "*":
                    return x * y
                case "/":
                    return x / y
                case "//":
                    return x // y
                case "%":
                    return x % y
                case "**":
                    if isinstance(x, int) and isinstance(y, int) and abs(y) > 4096:
                        return self.err("E0409", f"`{x} ** {y}` is out of range", e.span)
                    return x**y
                case "<":
                    return x < y
                case "<=":
                    return x <= y
                case ">":
                    return x > y
                case ">=":
                    return x >= y
        except ZeroDivisionError:
            return self.err("E0210", "division by zero in a compile-time expression", e.span)
        except OverflowError:
            return self.err("E0409", "compile-time value overflows", e.span)
        return self.err("E0205", f"unsupported operator `{op}`", e.op_span)

    def eval_listcomp(self, e: ast.ListComp, frame: Frame, scope: Scope) -> Any:
        it = self.eval_expr(e.iterable, frame, scope)
        if it is POISON:
            return POISON
        if isinstance(it, RangeVal):
            if not (_const_int(it.start) and _const_int(it.stop)):
                return self.err(
                    "E0401", "list bounds must be compile-time constants", e.iterable.span
                )
            if len(it) > MAX_UNROLL:
                return self.err(
                    "E0409", f"list has {len(it)} items (limit {MAX_UNROLL})", e.iterable.span
                )
            items: list[Any] = [Dim.of(i) for i in it.items()]
        elif isinstance(it, list | tuple):
            items = list(it)
        else:
            return self.err("E0401", f"cannot iterate over {describe(it)}", e.iterable.span)
        if len(items) > MAX_UNROLL:
            return self.err(
                "E0409", f"list has {len(items)} items (limit {MAX_UNROLL})", e.iterable.span
            )
        out = []
        for item in items:
            inner = Scope(scope)
            inner.vars[e.var.name] = item
            out.append(self.eval_expr(e.element, frame, inner))
        return out

    def eval_if(self, e: ast.IfExpr, frame: Frame, scope: Scope) -> Any:
        cond = self.eval_expr(e.cond, frame, scope)
        if cond is POISON:
            return POISON
        if not isinstance(cond, bool):
            return self.err(
                "E0207",
                f"an `if` condition must be a compile-time bool, found {describe(cond)}",
                e.cond.span,
                help="for a tensor condition use `where(cond, a, b)`",
            )
        branch = e.then if cond else e.orelse
        if isinstance(branch, ast.IfExpr):
            return self.eval_if(branch, frame, scope)
        value = self.exec_block(branch, frame, Scope(scope))
        return value


def _is_intlike(v: Any) -> bool:
    return isinstance(v, int | Dim) and not isinstance(v, bool)


def _const_int(v: Any) -> bool:
    return (isinstance(v, int) and not isinstance(v, bool)) or (isinstance(v, Dim) and v.is_const)


def _to_number(v: Any) -> Any:
    if isinstance(v, Dim):
        return int(v) if v.is_const else None
    return v


def _ct_equal(a: Any, b: Any) -> bool | None:
    if isinstance(a, Dim) and isinstance(b, Dim):
        if a == b:
            return True
        if a.is_const and b.is_const:
            return False
        return None
    x = _to_number(a) if isinstance(a, Dim) else a
    y = _to_number(b) if isinstance(b, Dim) else b
    if x is None or y is None:
        return None
    if isinstance(x, Tensor) or isinstance(y, Tensor):
        return None
    return x == y


_POSTFIX = (ast.Name, ast.Call, ast.Subscript, ast.Attribute, ast.TupleLit, ast.ListLit)


def _with_transpose_fix(d: Any, e: ast.Binary) -> Any:
    """`x @ w` where `x @ w.T` fits: attach the edit that writes the `.T`."""
    from dataclasses import replace

    from .diagnostics import Fix

    if d.code != "E0302" or not d.help or "operand with `.T`" not in d.help:
        return d
    operand = e.right if "right operand" in d.help else e.left
    end = operand.span
    at_end = replace(end, line=end.end_line, col=end.end_col, start=end.end)
    if isinstance(operand, _POSTFIX):
        fixes = (Fix(at_end, ".T"),)
    else:
        at_start = replace(end, end_line=end.line, end_col=end.col, end=end.start)
        fixes = (Fix(at_start, "("), Fix(at_end, ").T"))
    return replace(d, fixes=fixes)
