"""Emission: loop-IR `Program` -> LLVM IR module (llvmlite.ir).

One internal function per kernel and one entry point

    i32 @mdl_run(i64* syms, i8** bufs, i64* errinfo, i8* pool)

that calls the kernels in order and returns 0, or 1 + the code of the first
`Fail` (its values written to `errinfo`). `bufs` holds one pointer per
`Program.buffers` entry, in order; `syms` the run-time dims in
`Program.symbols` order; `pool` a thread pool from `mdl_pool_create` (pool.py,
emitted into the same module) or NULL to run on the calling thread alone.
Parallel loops are outlined into functions the pool runs on ranges of
iterations; matrix products split across the pool (parallel.py). Loop variables and locals are stack slots that
LLVM's SROA turns into registers. The arithmetic follows the reference
semantics (numpy): see the IR-op notes below.
"""

from __future__ import annotations

from typing import Any

import llvmlite.ir as ll

from ..dims import Dim
from ..types import DType
from . import loopir as ir
from .emit_arith import float_divmod, int_divmod, int_pow
from .emit_half import HALF_DTYPES, from_int, narrow, round_f32, round_f64, widen
from .emit_half import constant as half_constant
from .fastmath import apply_fast_math
from .gemm import define_gemm
from .memplan import per_thread_bytes
from .parallel import MIN_LOOP_WORK, define_parallel_gemm, work_estimate
from .pool import TASK, define_pool, define_ran_count, define_strict_split
from .scratch import define_give, define_release, define_take
from .vmath import erf_f32, exp_f32, tanh_f32

I1 = ll.IntType(1)
I8 = ll.IntType(8)
I16 = ll.IntType(16)
I32 = ll.IntType(32)
I64 = ll.IntType(64)
F32 = ll.FloatType()
F64 = ll.DoubleType()
VALUE_TYPES: dict[DType, ll.Type] = {
    DType.F32: F32,
    DType.F64: F64,
    DType.I32: I32,
    DType.I64: I64,
    DType.BOOL: I1,
    # f16 and bf16 compute in f32 registers holding values of their dtype (emit_half.py)
    DType.F16: F32,
    DType.BF16: F32,
}
STORAGE_TYPES: dict[DType, ll.Type] = {
    **VALUE_TYPES,
    DType.BOOL: I8,
    DType.F16: I16,
    DType.BF16: I16,
}
# f16/bf16 ops whose f32 result is already a value of the operands' dtype: no rounding
_EXACT_IN_DTYPE = frozenset({"neg", "abs", "max", "min", "floor", "ceil"})
ENTRY = "mdl_run"


class EmitError(Exception):
    pass


class _KernelAttributes(ll.values.FunctionAttributes):
    """llvmlite's attribute set plus the string attribute "no-builtins": it keeps LLVM from
    turning short copy and fill loops (im2col rows of 8 to 32 floats) into calls to memcpy and
    memset, which cost more than the loops they replace."""

    _known = ll.values.FunctionAttributes._known | {'"no-builtins"'}


def emit(
    program: ir.Program, triple: str = "", vector_width: int = 8, fast_math: bool = False
) -> ll.Module:
    """`vector_width`: f32 lanes of the target's vectors (8 for AVX2, 16 for AVX-512);
    `fast_math`: relaxed float semantics (fastmath.py), off by default."""
    m = ll.Module(name=program.name or "model")
    if triple:
        m.triple = triple
    e = _Emitter(m, program, vector_width)
    define_ran_count(m)
    define_strict_split(m)
    define_release(m)
    kernels = [e.kernel(k, i) for i, k in enumerate(program.kernels)]
    fty = ll.FunctionType(
        I32, [I64.as_pointer(), I8.as_pointer().as_pointer(), I64.as_pointer(), I8.as_pointer()]
    )
    run = ll.Function(m, fty, ENTRY)
    b = ll.IRBuilder(run.append_basic_block("entry"))
    syms, bufs, err, pool = run.args
    pointers: dict[str, Any] = {}
    for name, i in e.index.items():
        raw = b.load(b.gep(bufs, [ll.Constant(I64, i)]))
        pointers[name] = b.bitcast(raw, STORAGE_TYPES[e.dtypes[name]].as_pointer())
    for fn, used in kernels:
        rc = b.call(fn, [syms, err, pool, *[pointers[n] for n in used]])
        ok = b.icmp_unsigned("==", rc, ll.Constant(I32, 0))
        cont = run.append_basic_block("next")
        fail = run.append_basic_block("fail")
        b.cbranch(ok, cont, fail)
        b.position_at_end(fail)
        b.ret(rc)
        b.position_at_end(cont)
    b.ret(ll.Constant(I32, 0))
    if fast_math:
        apply_fast_math(m)
    return m


class _Emitter:
    def __init__(self, module: ll.Module, program: ir.Program, width: int):
        self.m = module
        self.p = program
        self.width = width
        self.index = {b.name: i for i, b in enumerate(program.buffers)}
        self.dtypes = {b.name: b.dtype for b in program.buffers + program.chunks}
        self.chunks = {b.name: b for b in program.chunks}
        self.block_bytes = per_thread_bytes(program) + 64  # one thread's scratch block (+ slack)
        self.sym_index = {s: i for i, s in enumerate(program.symbols)}
        self._decls: dict[str, ll.Function] = {}
        self.pool = define_pool(module)
        self.loops: dict[int, tuple[ll.Function, ll.Function, list[str]]] = {}

    # ------------------------------------------------------------ functions
    def kernel(self, k: ir.Kernel, number: int) -> tuple[ll.Function, list[str]]:
        """One function per kernel, taking the buffers it uses as `noalias` pointers.

        Distinct buffers never overlap (every node writes fresh ones; inputs are only
        read; temporaries sharing arena memory are never used by the same kernel), and
        saying so spares the vectoriser its run-time overlap checks. A parallel loop at
        the kernel's top level becomes a function of its own (`_outline`).
        """
        self.loops = {
            id(st): self._outline(st, f"k{number}_loop{j}")
            for j, st in enumerate(k.body)
            if isinstance(st, ir.For) and st.parallel
        }
        used = [n for n in ir.used_buffers(k.body) if n not in self.chunks]
        return self._function(f"k{number}", k.body, used), used

    def _function(
        self, name: str, stmts: tuple, used: list[str], ranged: bool = False
    ) -> ll.Function:
        """`i32 name(i64* syms, i64* err, i8* pool, [i64 begin, i64 end,] buffers...)`;
        `ranged`: `stmts` is one loop, run over iterations begin..end only."""
        params = [I64.as_pointer(), I64.as_pointer(), I8.as_pointer()]
        params += [I64, I64] if ranged else []
        params += [STORAGE_TYPES[self.dtypes[n]].as_pointer() for n in used]
        fn = ll.Function(self.m, ll.FunctionType(I32, params), name)
        fn.linkage = "internal"
        fn.attributes = _KernelAttributes()
        fn.attributes.add("nounwind")
        fn.attributes.add('"no-builtins"')
        if ranged:  # called from the kernel and from the pool's task: one copy, not three
            fn.attributes.add("noinline")
        first_buffer = 5 if ranged else 3
        for arg in fn.args[first_buffer:]:
            arg.add_attribute("noalias")
        self.fn = fn
        self.entry = fn.append_basic_block("entry")
        body = fn.append_basic_block("body")
        self.b = ll.IRBuilder(body)
        self.syms_arg, self.err_arg, self.pool_arg = fn.args[0], fn.args[1], fn.args[2]
        self.buf_ptrs = dict(zip(used, fn.args[first_buffer:], strict=True))
        self.sym_vals: dict[str, Any] = {}
        if ranged:
            self.loop(stmts[0], {}, within=(fn.args[3], fn.args[4]))
        else:
            self.stmts(stmts, {})
        if not self.b.block.is_terminated:
            self.b.ret(ll.Constant(I32, 0))
        ll.IRBuilder(self.entry).branch(body)
        return fn

    def _outline(self, st: ir.For, name: str) -> tuple[ll.Function, ll.Function, list[str]]:
        """A parallel loop as `name` (its iterations begin..end) and `name_task`, the pool's
        entry: it unpacks [syms, status, buffers...] and runs `name`; a failure only sets
        `status` (the kernel then reruns the loop alone, so the error reported is the one
        a serial run meets first)."""
        everything = ir.used_buffers((st,))
        chunks = [n for n in everything if n in self.chunks]
        used = [n for n in everything if n not in self.chunks]
        inner = f"{name}_body" if chunks else name
        body = self._function(inner, (st,), used + chunks, ranged=True)
        if chunks:
            body = self._with_chunks(body, name, used, chunks)
        task = ll.Function(self.m, TASK, f"{name}_task")
        task.linkage = "internal"
        raw, begin, end = task.args
        b = ll.IRBuilder(task.append_basic_block("entry"))
        ctx = b.bitcast(raw, I8.as_pointer().as_pointer())

        def slot(i: int, t: ll.Type) -> Any:
            return b.bitcast(b.load(b.gep(ctx, [ll.Constant(I64, i)])), t.as_pointer())

        syms, status = slot(0, I64), slot(1, I32)
        bufs = [slot(2 + i, STORAGE_TYPES[self.dtypes[n]]) for i, n in enumerate(used)]
        err = b.alloca(I64, ll.Constant(I64, 8))
        none = ll.Constant(I8.as_pointer(), None)
        rc = b.call(body, [syms, err, none, begin, end, *bufs])
        with b.if_then(b.icmp_unsigned("!=", rc, ll.Constant(I32, 0))):
            b.store_atomic(ll.Constant(I32, 1), status, "monotonic", 4)
        b.ret_void()
        return body, task, used

    def _with_chunks(
        self, inner: ll.Function, name: str, used: list[str], chunks: list[str]
    ) -> ll.Function:
        """`name`: the loop function `inner` with its chunk buffers carved (64-byte aligned)
        from a scratch block taken from the module's cache and given back after
        (scratch.py); when no block is cached and malloc fails, the program's
        out-of-memory `Fail`."""
        params = [a.type for a in inner.args[: 5 + len(used)]]
        fn = ll.Function(self.m, ll.FunctionType(I32, params), name)
        fn.linkage = "internal"
        fn.attributes.add("nounwind")
        fn.attributes.add("noinline")
        b = ll.IRBuilder(fn.append_basic_block("entry"))
        i8p = I8.as_pointer()
        size = ll.Constant(I64, self.block_bytes)
        raw = b.call(define_take(self.m), [size])
        with b.if_then(b.icmp_unsigned("==", raw, ll.Constant(i8p, None)), likely=False):
            b.store(size, fn.args[1])
            b.ret(ll.Constant(I32, self.p.oom_error + 1))
        at: Any = b.ptrtoint(raw, I64)
        ptrs = []
        for c in chunks:
            buf = self.chunks[c]
            count = 1
            for d in buf.shape:
                count *= int(Dim.of(d))
            at = b.and_(b.add(at, ll.Constant(I64, 63)), ll.Constant(I64, -64))
            ptrs.append(b.inttoptr(at, STORAGE_TYPES[buf.dtype].as_pointer()))
            at = b.add(at, ll.Constant(I64, max(count, 1) * buf.dtype.itemsize))
        rc = b.call(inner, [*fn.args, *ptrs])
        b.call(define_give(self.m), [raw])
        b.ret(rc)
        return fn

    def dispatch(self, st: ir.For, env: dict[str, Any]) -> None:
        """Run an outlined loop: across the pool when it is worth it, else alone."""
        body, task, used = self.loops[id(st)]
        b = self.b
        start, stop = self.expr(st.start, env), self.expr(st.stop, env)
        n = b.sub(stop, start)
        n = b.select(b.icmp_signed("<", n, ll.Constant(I64, 0)), ll.Constant(I64, 0), n)
        work = self.expr(work_estimate((st,)), env)
        bufs = [self.buffer(name) for name in used]
        none = ll.Constant(I8.as_pointer(), None)
        alone = b.or_(
            b.icmp_unsigned("==", self.pool_arg, none),
            b.or_(
                b.icmp_signed("<", n, ll.Constant(I64, 2)),
                b.icmp_signed("<", work, ll.Constant(I64, MIN_LOOP_WORK)),
            ),
        )
        rc_slot = self.slot(I32, "rc")
        args = [self.syms_arg, self.err_arg]
        with b.if_else(alone) as (then, orelse):
            with then:  # alone, but a product inside may still use the pool
                b.store(
                    b.call(body, [*args, self.pool_arg, ll.Constant(I64, 0), n, *bufs]), rc_slot
                )
            with orelse:
                ctx = self.slot(ll.ArrayType(I8.as_pointer(), 2 + len(used)), "ctx")
                status = self.slot(I32, "status")
                b.store(ll.Constant(I32, 0), status)
                for i, v in enumerate([self.syms_arg, status, *bufs]):
                    b.store(
                        b.bitcast(v, I8.as_pointer()),
                        b.gep(ctx, [ll.Constant(I64, 0), ll.Constant(I64, i)]),
                    )
                ctx_raw = b.bitcast(ctx, I8.as_pointer())
                b.call(self.pool.parallel_for, [self.pool_arg, task, ctx_raw, n])
                failed = b.icmp_unsigned("!=", b.load(status), ll.Constant(I32, 0))
                b.store(ll.Constant(I32, 0), rc_slot)
                with b.if_then(failed):
                    b.store(b.call(body, [*args, none, ll.Constant(I64, 0), n, *bufs]), rc_slot)
        rc = b.load(rc_slot)
        fail = self.fn.append_basic_block("loop_failed")
        cont = self.fn.append_basic_block("loop_done")
        b.cbranch(b.icmp_unsigned("!=", rc, ll.Constant(I32, 0)), fail, cont)
        b.position_at_end(fail)
        b.ret(rc)
        b.position_at_end(cont)

    def slot(self, t: ll.Type, name: str) -> Any:
        """A stack slot in the entry block (so that SROA promotes it)."""
        eb = ll.IRBuilder(self.entry)
        if self.entry.instructions:
            eb.position_before(self.entry.instructions[0])
        return eb.alloca(t, name=name)

    def buffer(self, name: str) -> Any:
        return self.buf_ptrs[name]

    def sym(self, name: str) -> Any:
        if name not in self.sym_vals:
            eb = ll.IRBuilder(self.entry)
            self.sym_vals[name] = eb.load(
                eb.gep(self.syms_arg, [ll.Constant(I64, self.sym_index[name])]), name=f"dim_{name}"
            )
        return self.sym_vals[name]

    # ------------------------------------------------------------ statements
    def stmts(self, stmts: tuple, env: dict[str, Any]) -> None:
        env = dict(env)
        for st in stmts:
            if self.b.block.is_terminated:
                return
            match st:
                case ir.For() if id(st) in self.loops:
                    self.dispatch(st, env)
                case ir.For():
                    self.loop(st, env)
                case ir.Store():
                    ptr = self.b.gep(self.buffer(st.buf), [self.expr(st.index, env)])
                    dtype = self.dtypes[st.buf]
                    if dtype in HALF_DTYPES:
                        value = self.half_bits(st.value, env)
                    else:
                        value = self.expr(st.value, env)
                    if dtype is DType.BOOL:
                        value = self.b.zext(value, I8)
                    self.b.store(value, ptr)
                case ir.Local():
                    slot = self.slot(VALUE_TYPES[st.dtype], st.name)
                    self.b.store(self.expr(st.init, env), slot)
                    env[st.name] = slot
                case ir.Assign():
                    self.b.store(self.expr(st.value, env), env[st.name])
                case ir.If():
                    cond = self.expr(st.cond, env)
                    with self.b.if_else(cond) as (then, orelse):
                        with then:
                            self.stmts(st.then, env)
                        with orelse:
                            self.stmts(st.orelse, env)
                case ir.Gemm():
                    t = VALUE_TYPES[self.dtypes[st.c]]
                    width = self.width if t == F32 else self.width // 2
                    fn = define_gemm(self.m, t, width, indirect=bool(st.b_rows))
                    fn = define_parallel_gemm(self.m, fn, self.pool)
                    ptrs = [
                        self.b.gep(self.buffer(name), [self.expr(off, env)])
                        for name, off in ((st.a, st.a_off), (st.b, st.b_off), (st.c, st.c_off))
                    ]
                    sizes = [self.expr(e, env) for e in (st.m, st.n, st.k, st.lda, st.ldb, st.ldc)]
                    rows = [self.buffer(st.b_rows)] if st.b_rows else []
                    self.b.call(fn, [self.pool_arg, *ptrs, *sizes, *rows])
                case ir.Fail():
                    for i, v in enumerate(st.values):
                        x = self.to_i64(self.expr(v, env), v.dtype)
                        self.b.store(x, self.b.gep(self.err_arg, [ll.Constant(I64, i)]))
                    self.b.ret(ll.Constant(I32, st.code + 1))
                    # code after a Fail in the same block is unreachable: continue in a fresh block
                    self.b.position_at_end(self.fn.append_basic_block("after_fail"))
                case _:
                    raise EmitError(f"unknown statement {st!r}")

    def loop(self, st: ir.For, env: dict[str, Any], within: tuple[Any, Any] | None = None) -> None:
        """`within`: run only iterations begin..end (counted from the loop's start)."""
        b = self.b
        start = self.expr(st.start, env)
        stop = self.expr(st.stop, env)
        if within is not None:
            start, stop = b.add(start, within[0]), b.add(start, within[1])
        var = self.slot(I64, st.var)
        b.store(start, var)
        cond_bb = self.fn.append_basic_block(f"{st.var}_cond")
        body_bb = self.fn.append_basic_block(f"{st.var}_body")
        exit_bb = self.fn.append_basic_block(f"{st.var}_exit")
        b.branch(cond_bb)
        b.position_at_end(cond_bb)
        i = b.load(var)
        b.cbranch(b.icmp_signed("<", i, stop), body_bb, exit_bb)
        b.position_at_end(body_bb)
        inner = dict(env)
        inner[st.var] = var
        self.stmts(st.body, inner)
        if not b.block.is_terminated:
            b.store(b.add(b.load(var), ll.Constant(I64, 1)), var)
            b.branch(cond_bb)
        b.position_at_end(exit_bb)

    # ------------------------------------------------------------ expressions
    def expr(self, e: Any, env: dict[str, Any]) -> Any:
        b = self.b
        match e:
            case ir.Const():
                t = VALUE_TYPES[e.dtype]
                if e.dtype is DType.BOOL:
                    return ll.Constant(I1, int(bool(e.value)))
                if e.dtype in HALF_DTYPES:
                    return half_constant(e.value, e.dtype)
                if e.dtype.is_float:
                    return ll.Constant(t, float(e.value))
                return ll.Constant(t, int(e.value))
            case ir.Var():
                return b.load(env[e.name])
            case ir.Sym():
                return self.sym(e.name)
            case ir.Load():
                v = b.load(b.gep(self.buffer(e.buf), [self.expr(e.index, env)]))
                if e.dtype in HALF_DTYPES:
                    return widen(b, v, e.dtype)
                return b.icmp_unsigned("!=", v, ll.Constant(I8, 0)) if e.dtype is DType.BOOL else v
            case ir.Un():
                return self.rounded(e, self.unary(e.op, self.expr(e.x, env), e.x.dtype))
            case ir.Bin():
                x, y = self.expr(e.a, env), self.expr(e.b, env)
                return self.rounded(e, self.binary(e.op, x, y, e.a.dtype))
            case ir.Select():
                return b.select(self.expr(e.cond, env), self.expr(e.a, env), self.expr(e.b, env))
            case ir.Cast():
                return self.cast(self.expr(e.x, env), e.x.dtype, e.dtype)
        raise EmitError(f"unknown expression {e!r}")

    def rounded(self, e: ir.Un | ir.Bin, value: Any) -> Any:
        """An f16/bf16 result computed in f32, rounded to its dtype as the reference does."""
        if e.dtype in HALF_DTYPES and e.op not in _EXACT_IN_DTYPE:
            return round_f32(self.b, value, e.dtype)
        return value

    def half_bits(self, e: Any, env: dict[str, Any]) -> Any:
        """The 16 bits to store for f16/bf16 expression `e`: copies move them unconverted
        (as numpy's copies do, NaN payloads included)."""
        match e:
            case ir.Load():
                return self.b.load(self.b.gep(self.buffer(e.buf), [self.expr(e.index, env)]))
            case ir.Select():
                cond = self.expr(e.cond, env)
                return self.b.select(cond, self.half_bits(e.a, env), self.half_bits(e.b, env))
        return narrow(self.b, self.expr(e, env), e.dtype)

    def intrinsic(self, name: str, t: ll.Type, args: list[Any]) -> Any:
        fn = self.m.declare_intrinsic(name, [t], ll.FunctionType(t, [t] * len(args)))
        return self.b.call(fn, args)

    def libm(self, name: str, t: ll.Type, args: list[Any]) -> Any:
        symbol = name + ("f" if t == F32 else "")
        fn = self._decls.get(symbol)
        if fn is None:
            fn = ll.Function(self.m, ll.FunctionType(t, [t] * len(args)), symbol)
            self._decls[symbol] = fn
        return self.b.call(fn, args)

    def unary(self, op: str, x: Any, dt: DType) -> Any:
        b = self.b
        t = VALUE_TYPES[dt]
        if dt.is_float:
            match op:
                case "neg":
                    return b.fneg(x)
                case "abs":
                    return self.intrinsic("llvm.fabs", t, [x])
                case "exp" if t == F32:
                    return exp_f32(b, x)
                case "erf" if t == F32:
                    return erf_f32(b, x)
                case "tanh" if t == F32:
                    return tanh_f32(b, x)
                case "exp" | "log" | "sqrt" | "sin" | "cos" | "floor" | "ceil":
                    return self.intrinsic(f"llvm.{op}", t, [x])
                case "rsqrt":
                    return b.fdiv(ll.Constant(t, 1.0), self.intrinsic("llvm.sqrt", t, [x]))
                case "tanh" | "erf":
                    return self.libm(op, t, [x])
                case "sigmoid":
                    # as the reference: exp of -|x| never overflows, so a large negative x
                    # gives exp(x) / (1 + exp(x)), not 1 / inf = 0
                    z = self.unary("exp", b.fneg(self.intrinsic("llvm.fabs", t, [x])), dt)
                    one_plus = b.fadd(ll.Constant(t, 1.0), z)
                    return b.select(
                        b.fcmp_ordered(">=", x, ll.Constant(t, 0.0)),
                        b.fdiv(ll.Constant(t, 1.0), one_plus),
                        b.fdiv(z, one_plus),
                    )
                case "isnan":
                    return b.fcmp_unordered("uno", x, x)
        elif dt is DType.BOOL:
            if op == "not":
                return b.xor(x, ll.Constant(I1, 1))
        else:
            match op:
                case "neg":
                    return b.sub(ll.Constant(t, 0), x)
                case "abs":
                    return b.select(
                        b.icmp_signed("<", x, ll.Constant(t, 0)), b.sub(ll.Constant(t, 0), x), x
                    )
        raise EmitError(f"unary `{op}` on {dt}")

    def binary(self, op: str, x: Any, y: Any, dt: DType) -> Any:
        b = self.b
        t = VALUE_TYPES[dt]
        if dt.is_float:
            match op:
                case "add":
                    return b.fadd(x, y)
                case "sub":
                    return b.fsub(x, y)
                case "mul":
                    return b.fmul(x, y)
                case "div":
                    return b.fdiv(x, y)
                case "pow":
                    return self.intrinsic("llvm.pow", t, [x, y])
                case "max" | "min":
                    # numpy's rule (its x86 vector max/min): NaN-propagating, and on a tie
                    # (-0 and +0) the second operand: max(a, b) = a if a > b or a is nan else b
                    keep_a = b.or_(
                        b.fcmp_ordered(">" if op == "max" else "<", x, y),
                        b.fcmp_unordered("uno", x, x),
                    )
                    return b.select(keep_a, x, y)
                case "floordiv" | "mod":
                    return float_divmod(b, x, y, t)[0 if op == "floordiv" else 1]
                case "eq" | "lt" | "le" | "gt" | "ge":
                    return b.fcmp_ordered(
                        {"eq": "==", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op], x, y
                    )
                case "ne":
                    return b.fcmp_unordered("!=", x, y)
        elif dt is DType.BOOL:
            match op:
                case "and":
                    return b.and_(x, y)
                case "or":
                    return b.or_(x, y)
                case "eq":
                    return b.icmp_unsigned("==", x, y)
                case "ne":
                    return b.icmp_unsigned("!=", x, y)
        else:
            match op:
                case "add":
                    return b.add(x, y)
                case "sub":
                    return b.sub(x, y)
                case "mul":
                    return b.mul(x, y)
                case "max":
                    return b.select(b.icmp_signed(">", x, y), x, y)
                case "min":
                    return b.select(b.icmp_signed("<", x, y), x, y)
                case "eq" | "ne" | "lt" | "le" | "gt" | "ge":
                    sym = {"eq": "==", "ne": "!=", "lt": "<", "le": "<=", "gt": ">", "ge": ">="}[op]
                    return b.icmp_signed(sym, x, y)
                case "floordiv" | "mod" | "div":
                    return int_divmod(b, x, y, t)[1 if op == "mod" else 0]
                case "pow":
                    return b.call(int_pow(self.m, self._decls, t), [x, y])
        raise EmitError(f"binary `{op}` on {dt}")

    def cast(self, x: Any, src: DType, dst: DType) -> Any:
        b = self.b
        if src is dst:
            return x
        st, dt_ = VALUE_TYPES[src], VALUE_TYPES[dst]
        if dst in HALF_DTYPES and src is not DType.BOOL:
            if src.is_int:
                return from_int(b, x, st.width, dst)
            return round_f64(b, x, dst) if src is DType.F64 else round_f32(b, x, dst)
        if src in HALF_DTYPES and dst is DType.F32:
            return x
        if dst is DType.BOOL:
            if src.is_float:
                return b.fcmp_unordered("!=", x, ll.Constant(st, 0.0))
            return b.icmp_unsigned("!=", x, ll.Constant(st, 0))
        if src is DType.BOOL:
            return b.uitofp(x, dt_) if dst.is_float else b.zext(x, dt_)
        if src.is_float and dst.is_float:
            return b.fpext(x, dt_) if dst is DType.F64 else b.fptrunc(x, dt_)
        if src.is_float:
            # saturating, NaN -> 0: the reference's cast
            name = f"llvm.fptosi.sat.i{dt_.width}.{'f32' if st == F32 else 'f64'}"
            fn = self.m.globals.get(name) or ll.Function(self.m, ll.FunctionType(dt_, [st]), name)
            return b.call(fn, [x])
        if dst.is_float:
            return b.sitofp(x, dt_)
        if dt_.width > st.width:
            return b.sext(x, dt_)
        return b.trunc(x, dt_)

    def to_i64(self, x: Any, dt: DType) -> Any:
        return self.cast(x, dt, DType.I64) if dt is not DType.I64 else x
