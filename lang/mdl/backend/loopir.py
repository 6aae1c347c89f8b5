"""The loop IR: buffers, loop nests and scalar expressions, one `Program` per model.

Graph -> (lower.py) -> `Program` -> (emit.py) -> LLVM IR. Every buffer is a
dense row-major array whose dims may be symbolic (`Sym`: read at run time
from the caller's dims array). Kernels are statement lists: `For` loops,
`Store`s into buffers, scalar `Local`s and `Assign`s (accumulators), `If`,
and `Fail` (a checked run-time error such as a gather index out of range).
Index arithmetic is i64; values have the dtype of what they compute.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from ..dims import Dim
from ..types import DType

node = dataclass(frozen=True, slots=True, eq=False)
I64 = DType.I64
BOOL = DType.BOOL

UNARY_OPS = frozenset(
    {
        "neg",
        "abs",
        "exp",
        "log",
        "sqrt",
        "rsqrt",
        "tanh",
        "erf",
        "sigmoid",
        "sin",
        "cos",
        "floor",
        "ceil",
        "not",
        "isnan",
    }
)
BINARY_OPS = frozenset(
    {
        "add",
        "sub",
        "mul",
        "div",
        "floordiv",
        "mod",
        "pow",
        "min",
        "max",
        "eq",
        "ne",
        "lt",
        "le",
        "gt",
        "ge",
        "and",
        "or",
    }
)
COMPARISONS = frozenset({"eq", "ne", "lt", "le", "gt", "ge"})


# ---------------------------------------------------------------- expressions
@node
class Const:
    value: int | float | bool
    dtype: DType


@node
class Var:
    """A loop variable (i64) or a scalar local."""

    name: str
    dtype: DType = I64


@node
class Sym:
    """A symbolic dim of the model (`B`), read at run time."""

    name: str
    dtype: DType = I64


@node
class Load:
    buf: str
    index: Expr
    dtype: DType


@node
class Un:
    op: str
    x: Expr
    dtype: DType


@node
class Bin:
    op: str
    a: Expr
    b: Expr
    dtype: DType  # the result's: bool for comparisons


@node
class Select:
    cond: Expr
    a: Expr
    b: Expr
    dtype: DType


@node
class Cast:
    x: Expr
    dtype: DType


Expr = Const | Var | Sym | Load | Un | Bin | Select | Cast


# ---------------------------------------------------------------- statements
@node
class For:
    var: str
    start: Expr
    stop: Expr
    body: tuple[Stmt, ...]
    parallel: bool = False


@node
class Store:
    buf: str
    index: Expr
    value: Expr


@node
class Local:
    name: str
    dtype: DType
    init: Expr


@node
class Assign:
    name: str
    value: Expr


@node
class If:
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] = ()


@node
class Fail:
    """Stop the run with error `code` (an index into `Program.errors`), reporting `values`."""

    code: int
    values: tuple[Expr, ...] = ()


@node
class Gemm:
    """`c[i, j] = sum_k a[i, k] * b[k, j]` for i < m, j < n, on row-major float matrices
    starting at the given offsets with leading dimensions lda, ldb, ldc.

    The emitter expands it into a register-blocked micro-kernel with explicit vector
    code; every element sums its products in k order with fused multiply-adds, so the
    result does not depend on the blocking.
    """

    a: str
    b: str
    c: str
    m: Expr
    n: Expr
    k: Expr
    a_off: Expr
    b_off: Expr
    c_off: Expr
    lda: Expr
    ldb: Expr
    ldc: Expr
    # indirect B (a convolution without im2col): the name of a const i64 buffer whose
    # entry k is the offset of B's row k from b_off; ldb is then unused
    b_rows: str = ""


Stmt = For | Store | Local | Assign | If | Fail | Gemm


@node
class Kernel:
    name: str  # for reading the IR: "fc1/matmul_3"
    body: tuple[Stmt, ...]


@dataclass(eq=False)
class Buffer:
    name: str
    dtype: DType
    shape: tuple[Dim, ...]
    role: str  # input, param, output, temp, const; chunk (in Program.chunks)
    data: Any = None  # the array of a const buffer


@dataclass(eq=False)
class Program:
    name: str
    buffers: list[Buffer] = field(default_factory=list)
    kernels: list[Kernel] = field(default_factory=list)
    symbols: list[str] = field(
        default_factory=list
    )  # runtime dims, in the order the caller passes them
    errors: list[str] = field(
        default_factory=list
    )  # messages of `Fail` codes (with {0}, {1} for values)
    # Scratch private to one run of a parallel loop's body over its share of iterations
    # (one per thread, not one per iteration, as an im2col matrix): allocated by the
    # outlined loop function itself, so not in `buffers` and not in the arena. Shapes are
    # constant; used only inside top-level parallel loops; `oom_error` is the `Fail` code
    # the loop returns when it cannot get the memory.
    chunks: list[Buffer] = field(default_factory=list)
    oom_error: int = -1

    def buffer(self, name: str) -> Buffer:
        for b in self.buffers + self.chunks:
            if b.name == name:
                return b
        raise KeyError(name)


# ---------------------------------------------------------------- builders
def const(value: int | float | bool, dtype: DType = I64) -> Const:
    return Const(value, dtype)


def idx(value: int) -> Const:
    return Const(int(value), I64)


def dim(d: Dim | int) -> Expr:
    """A (possibly symbolic) dim as an i64 expression."""
    d = Dim.of(d)
    if d.is_const:
        return idx(int(d))
    out: Expr | None = None
    for mono, coeff in d.terms:
        term: Expr = idx(coeff)
        for atom, power in mono:
            base = Sym(atom) if isinstance(atom, str) else _floordiv_atom(atom)
            for _ in range(power):
                term = base if (isinstance(term, Const) and term.value == 1) else mul(term, base)
        out = term if out is None else add(out, term)
    return out if out is not None else idx(0)


def _floordiv_atom(atom: Any) -> Expr:
    return Bin("floordiv", dim(atom.num), dim(atom.den), I64)


def add(a: Expr, b: Expr) -> Expr:
    if isinstance(a, Const) and a.value == 0 and a.dtype is I64:
        return b
    if isinstance(b, Const) and b.value == 0 and b.dtype is I64:
        return a
    return Bin("add", a, b, a.dtype)


def mul(a: Expr, b: Expr) -> Expr:
    for x in (a, b):
        if isinstance(x, Const) and x.value == 0 and x.dtype is I64:
            return idx(0)
    if isinstance(a, Const) and a.value == 1 and a.dtype is I64:
        return b
    if isinstance(b, Const) and b.value == 1 and b.dtype is I64:
        return a
    return Bin("mul", a, b, a.dtype)


def flat_index(shape: Sequence[Dim | int], indices: Sequence[Expr]) -> Expr:
    """Row-major offset of `indices` in a buffer of `shape`."""
    assert len(shape) == len(indices), (shape, indices)
    out: Expr | None = None
    for d, i in zip(shape, indices, strict=True):
        out = i if out is None else add(mul(out, dim(d)), i)
    return out if out is not None else idx(0)


def broadcast_indices(
    out_shape: Sequence[Dim], in_shape: Sequence[Dim], out_vars: Sequence[Expr]
) -> list[Expr]:
    """The indices into an operand broadcast (numpy rules) to `out_shape`."""
    offset = len(out_shape) - len(in_shape)
    result = []
    for axis, d in enumerate(in_shape):
        result.append(
            idx(0)
            if Dim.of(d) == 1 and Dim.of(out_shape[axis + offset]) != 1
            else out_vars[axis + offset]
        )
    return result


def loop_nest(
    shape: Sequence[Dim], prefix: str, body_of: Any, parallel: bool = False
) -> tuple[Stmt, ...]:
    """`for i0 in 0..d0 { for i1 ... { body_of([i0, i1, ...]) } }`; `parallel` marks the
    outermost loop (its iterations must write disjoint elements and read none of them)."""
    names = [f"{prefix}{k}" for k in range(len(shape))]
    body: tuple[Stmt, ...] = tuple(body_of([Var(n) for n in names]))
    for k, (n, d) in reversed(list(enumerate(zip(names, shape, strict=True)))):
        body = (For(n, idx(0), dim(d), body, parallel and k == 0),)
    return body


def flat_loop(
    shape: Sequence[Dim], prefix: str, body_of: Any, parallel: bool = False
) -> tuple[Stmt, ...]:
    """One loop over every index of `shape` in row-major order, the indices recovered from
    the loop variable by division: a parallel loop then splits over all of them (a
    softmax's rows of one batch entry), not only over the outermost axis (the batch)."""
    if len(shape) <= 1:
        return loop_nest(shape, prefix, body_of, parallel)
    total: Dim = Dim.of(1)
    for d in shape:
        total = total * Dim.of(d)
    rest: Expr = Var(prefix)
    prelude: list[Stmt] = []
    names = [f"{prefix}_{k}" for k in range(len(shape))]
    for k in range(len(shape) - 1, 0, -1):
        prelude.append(Local(names[k], I64, Bin("mod", rest, dim(shape[k]), I64)))
        prelude.append(Local(f"{prefix}_rest{k}", I64, Bin("floordiv", rest, dim(shape[k]), I64)))
        rest = Var(f"{prefix}_rest{k}")
    prelude.append(Local(names[0], I64, rest))
    body = tuple(prelude) + tuple(body_of([Var(n) for n in names]))
    return (For(prefix, idx(0), dim(total), body, parallel),)


# ---------------------------------------------------------------- verify
class LoopIRError(Exception):
    """The program breaks an invariant of the loop IR: an internal compiler error."""


def verify(p: Program) -> None:
    names = [b.name for b in p.buffers + p.chunks]
    if len(set(names)) != len(names):
        raise LoopIRError("buffer names are not unique")
    bufs = {b.name: b for b in p.buffers + p.chunks}
    chunks = {b.name for b in p.chunks}
    for b in p.chunks:
        if b.role != "chunk" or not all(Dim.of(d).is_const for d in b.shape):
            raise LoopIRError(f"chunk buffer {b.name}: role {b.role}, shape {b.shape}")
    if p.chunks and not 0 <= p.oom_error < len(p.errors):
        raise LoopIRError("chunk buffers without an out-of-memory error")
    syms = set(p.symbols)
    for k in p.kernels:
        _verify_stmts(k.body, bufs, syms, {}, k.name, len(p.errors))
        for st in k.body:
            if isinstance(st, For) and st.parallel:
                # outlined into a function of its own: it may use only its own names
                _verify_stmts((st,), bufs, syms, {}, f"{k.name} (parallel loop)", len(p.errors))
            elif chunks & set(used_buffers((st,))):
                raise LoopIRError(f"{k.name}: chunk buffer used outside a parallel loop")


def _no_nested_parallel(stmts: Sequence[Stmt], where: str) -> None:
    for st in stmts:
        match st:
            case For():
                if st.parallel:
                    raise LoopIRError(f"{where}: a parallel loop inside another statement")
                _no_nested_parallel(st.body, where)
            case If():
                _no_nested_parallel(st.then + st.orelse, where)


def _verify_stmts(stmts, bufs, syms, scope: dict[str, DType], where: str, n_errors: int) -> None:
    scope = dict(scope)
    for st in stmts:
        match st:
            case For():
                _expect(_verify_expr(st.start, bufs, syms, scope, where), I64, where, "loop start")
                _expect(_verify_expr(st.stop, bufs, syms, scope, where), I64, where, "loop stop")
                inner = dict(scope)
                inner[st.var] = I64
                _verify_stmts(st.body, bufs, syms, inner, where, n_errors)
                _no_nested_parallel(st.body, where)
            case Store():
                if st.buf not in bufs:
                    raise LoopIRError(f"{where}: store to unknown buffer {st.buf}")
                if bufs[st.buf].role in ("input", "param", "const"):
                    raise LoopIRError(f"{where}: store to read-only buffer {st.buf}")
                _expect(_verify_expr(st.index, bufs, syms, scope, where), I64, where, "index")
                _expect(
                    _verify_expr(st.value, bufs, syms, scope, where),
                    bufs[st.buf].dtype,
                    where,
                    f"value stored to {st.buf}",
                )
            case Local():
                _expect(_verify_expr(st.init, bufs, syms, scope, where), st.dtype, where, st.name)
                scope[st.name] = st.dtype
            case Assign():
                if st.name not in scope:
                    raise LoopIRError(f"{where}: assignment to undeclared {st.name}")
                _expect(
                    _verify_expr(st.value, bufs, syms, scope, where), scope[st.name], where, st.name
                )
            case If():
                _expect(_verify_expr(st.cond, bufs, syms, scope, where), BOOL, where, "condition")
                _verify_stmts(st.then, bufs, syms, scope, where, n_errors)
                _verify_stmts(st.orelse, bufs, syms, scope, where, n_errors)
                _no_nested_parallel(st.then + st.orelse, where)
            case Gemm():
                for name in (st.a, st.b, st.c):
                    if name not in bufs:
                        raise LoopIRError(f"{where}: gemm on unknown buffer {name}")
                dt = bufs[st.c].dtype
                if (
                    dt not in (DType.F32, DType.F64)
                    or bufs[st.a].dtype is not dt
                    or bufs[st.b].dtype is not dt
                ):
                    raise LoopIRError(f"{where}: gemm needs one float dtype")
                if bufs[st.c].role in ("input", "param", "const"):
                    raise LoopIRError(f"{where}: gemm writes read-only buffer {st.c}")
                if st.b_rows and (
                    st.b_rows not in bufs
                    or bufs[st.b_rows].dtype is not I64
                    or bufs[st.b_rows].role != "const"
                ):
                    raise LoopIRError(f"{where}: gemm row offsets {st.b_rows} not a const i64")
                for e in (st.m, st.n, st.k, st.a_off, st.b_off, st.c_off, st.lda, st.ldb, st.ldc):
                    _expect(_verify_expr(e, bufs, syms, scope, where), I64, where, "gemm size")
            case Fail():
                if not 0 <= st.code < n_errors:
                    raise LoopIRError(f"{where}: error code {st.code} has no message")
                for v in st.values:
                    _verify_expr(v, bufs, syms, scope, where)
            case _:
                raise LoopIRError(f"{where}: unknown statement {st!r}")


def _verify_expr(e, bufs, syms, scope, where) -> DType:
    match e:
        case Const():
            return e.dtype
        case Var():
            if e.name not in scope:
                raise LoopIRError(f"{where}: unknown variable {e.name}")
            if scope[e.name] is not e.dtype:
                raise LoopIRError(f"{where}: {e.name} is {scope[e.name]}, used as {e.dtype}")
            return e.dtype
        case Sym():
            if e.name not in syms:
                raise LoopIRError(f"{where}: unknown dim {e.name}")
            return I64
        case Load():
            if e.buf not in bufs:
                raise LoopIRError(f"{where}: load from unknown buffer {e.buf}")
            _expect(_verify_expr(e.index, bufs, syms, scope, where), I64, where, "index")
            _expect(e.dtype, bufs[e.buf].dtype, where, f"load from {e.buf}")
            return e.dtype
        case Un():
            if e.op not in UNARY_OPS:
                raise LoopIRError(f"{where}: unknown unary op {e.op}")
            t = _verify_expr(e.x, bufs, syms, scope, where)
            if e.op == "isnan":
                _expect(e.dtype, BOOL, where, "isnan")
            else:
                _expect(t, e.dtype, where, e.op)
            return e.dtype
        case Bin():
            if e.op not in BINARY_OPS:
                raise LoopIRError(f"{where}: unknown binary op {e.op}")
            ta = _verify_expr(e.a, bufs, syms, scope, where)
            tb = _verify_expr(e.b, bufs, syms, scope, where)
            _expect(tb, ta, where, f"operands of {e.op}")
            _expect(e.dtype, BOOL if e.op in COMPARISONS else ta, where, f"result of {e.op}")
            return e.dtype
        case Select():
            _expect(_verify_expr(e.cond, bufs, syms, scope, where), BOOL, where, "select")
            ta = _verify_expr(e.a, bufs, syms, scope, where)
            _expect(_verify_expr(e.b, bufs, syms, scope, where), ta, where, "select")
            _expect(e.dtype, ta, where, "select")
            return e.dtype
        case Cast():
            _verify_expr(e.x, bufs, syms, scope, where)
            return e.dtype
    raise LoopIRError(f"{where}: unknown expression {e!r}")


def _expect(got: DType, want: DType, where: str, what: str) -> None:
    if got is not want:
        raise LoopIRError(f"{where}: {what} is {got}, expected {want}")


def subexpressions(e: Expr):
    """`e` and every expression inside it (a load's index included), parents first."""
    stack = [e]
    while stack:
        x = stack.pop()
        yield x
        match x:
            case Load():
                stack.append(x.index)
            case Un() | Cast():
                stack.append(x.x)
            case Bin():
                stack.extend((x.b, x.a))
            case Select():
                stack.extend((x.b, x.a, x.cond))


def used_buffers(stmts: Sequence[Stmt]) -> list[str]:
    """The buffers a kernel reads or writes, in order of first use."""
    seen: dict[str, None] = {}

    def reads(e: Expr) -> None:
        for x in subexpressions(e):
            if isinstance(x, Load):
                seen.setdefault(x.buf)

    def walk(body: Sequence[Stmt]) -> None:
        for st in body:
            match st:
                case For():
                    reads(st.start)
                    reads(st.stop)
                    walk(st.body)
                case Store():
                    seen.setdefault(st.buf)
                    reads(st.index)
                    reads(st.value)
                case Local():
                    reads(st.init)
                case Assign():
                    reads(st.value)
                case If():
                    reads(st.cond)
                    walk(st.then)
                    walk(st.orelse)
                case Fail():
                    for v in reversed(st.values):
                        reads(v)
                case Gemm():
                    for name in (st.a, st.b, st.c, st.b_rows):
                        if name:
                            seen.setdefault(name)
                    sizes = (st.m, st.n, st.k, st.a_off, st.b_off, st.c_off, st.lda, st.ldb, st.ldc)
                    for v in reversed(sizes):
                        reads(v)

    walk(stmts)
    return list(seen)
