"""The abstract syntax tree: immutable nodes, each with a `Span`.

Produced by syntax/parser.py; never mutated afterwards. Later stages record
what they learn (bindings, types) in side tables keyed by node identity, which
is why nodes hash by identity (`eq=False`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..span import Span

node = dataclass(frozen=True, slots=True, eq=False)


@node
class Ident:
    name: str
    span: Span


@node
class Comment:
    text: str  # with the leading `#`
    span: Span


# ---------------------------------------------------------------- dims and types
@node
class DimName:
    name: str  # `_` is the wildcard
    span: Span


@node
class DimInt:
    value: int
    span: Span


@node
class DimBinary:
    op: str  # + - * / //
    left: DimExpr
    right: DimExpr
    span: Span


@node
class DimVariadic:
    name: str
    span: Span


DimExpr = DimName | DimInt | DimBinary | DimVariadic


@node
class TensorTypeExpr:
    dtype: Ident
    dims: tuple[DimExpr, ...]
    span: Span


@node
class ScalarTypeExpr:
    name: Ident  # int, float, bool, dim, or a dtype for a 0-d tensor
    span: Span


TypeExpr = TensorTypeExpr | ScalarTypeExpr


# ---------------------------------------------------------------- expressions
@node
class Name:
    id: str
    span: Span


@node
class IntLit:
    value: int
    span: Span


@node
class FloatLit:
    value: float
    text: str
    span: Span


@node
class BoolLit:
    value: bool
    span: Span


@node
class Binary:
    op: str  # + - * / // @ % ** == != < <= > >= and or ..
    left: Expr
    right: Expr
    op_span: Span
    span: Span


@node
class Unary:
    op: str  # - not
    operand: Expr
    span: Span


@node
class Arg:
    name: Ident | None  # keyword arguments have a name
    value: Expr
    span: Span


@node
class Call:
    func: Expr
    args: tuple[Arg, ...]
    span: Span


@node
class SliceItem:
    start: Expr | None
    stop: Expr | None
    step: Expr | None
    span: Span


@node
class EllipsisItem:
    span: Span


SubItem = Arg | SliceItem | EllipsisItem  # a positional item is an Arg without name


@node
class Subscript:
    value: Expr
    items: tuple[SubItem, ...]
    span: Span


@node
class Attribute:
    value: Expr
    attr: Ident
    span: Span


@node
class TupleLit:
    items: tuple[Expr, ...]
    span: Span


@node
class ListLit:
    items: tuple[Expr, ...]
    span: Span


@node
class ListComp:
    element: Expr
    var: Ident
    iterable: Expr
    span: Span


@node
class IfExpr:
    cond: Expr
    then: Block
    orelse: Block | IfExpr
    span: Span


Expr = (
    Name
    | IntLit
    | FloatLit
    | BoolLit
    | Binary
    | Unary
    | Call
    | Subscript
    | Attribute
    | TupleLit
    | ListLit
    | ListComp
    | IfExpr
)


# ---------------------------------------------------------------- statements
@node
class Let:
    names: tuple[Ident, ...]
    value: Expr
    span: Span


@node
class Assign:
    name: Ident
    value: Expr
    span: Span


@node
class Return:
    values: tuple[Expr, ...]
    span: Span


@node
class For:
    var: Ident
    iterable: Expr
    body: Block
    span: Span


@node
class ParamDecl:
    name: Ident
    type: TypeExpr
    init: Expr | None
    is_buffer: bool
    span: Span


@node
class ExprStmt:
    """An `if` used as a statement: its blocks may reassign outer variables."""

    value: Expr
    span: Span


Stmt = Let | Assign | Return | For | ParamDecl | ExprStmt


@node
class Block:
    stmts: tuple[Stmt, ...]
    value: Expr | None  # a trailing bare expression: the block's value
    span: Span


# ---------------------------------------------------------------- declarations
@node
class CtParam:
    name: Ident
    kind: Ident | None  # optional annotation: int, float, bool, dim
    default: Expr | None
    span: Span


@node
class Param:
    name: Ident
    type: TypeExpr
    index_range: tuple[Expr, Expr] | None  # `ids: i64[B, T] in 0..V`
    default: Expr | None
    span: Span


@node
class NamedOutput:
    name: Ident
    type: TypeExpr
    span: Span


@node
class Decl:
    kind: str  # fn, layer, model
    name: Ident
    ctparams: tuple[CtParam, ...] | None  # None: no brackets
    params: tuple[Param, ...]
    ret: TypeExpr | tuple[NamedOutput, ...] | None
    body: Block | Expr  # an fn may be `= expr`
    doc: str | None
    span: Span


@node
class Import:
    path: tuple[Ident, ...]
    alias: Ident | None
    span: Span


@node
class FromImport:
    path: tuple[Ident, ...]
    names: tuple[Ident, ...]
    span: Span


Item = Decl | Import | FromImport


@node
class Module:
    file: str
    items: tuple[Item, ...]
    comments: tuple[Comment, ...]
    span: Span
