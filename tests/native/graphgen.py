"""Random valid mdl models for differential fuzzing: graph seed -> `SubGraph` (mdl source
statements, typed inputs, seeded input arrays); several sub-graphs -> one `Case` model.

Shapes are solved by construction: every value's dtype and shape is tracked here (dims are
linear in the sub-graph's own batch symbol, `k * B3 + c`), and each primitive application
is built from operands that fit it. Everything about a sub-graph depends only on its seed,
so a failing one can be replayed alone (`Case.of([graph])`).

Floats carry an `exact` flag: true when both backends must produce the same bits (inputs,
IEEE-exact ops such as + * / sqrt max, layout ops). Results of ops whose rounding may
differ (exp, tanh, matmul, float sums, ...) are inexact; discontinuous ops (floor,
comparisons, float -> int casts, argmax, float // and %) and ops with a domain edge
(log, sqrt, rsqrt, pow) only take exact operands, so a last-bit difference can never turn
into a different integer, bool or NaN and be reported as a bug that is not one. Likewise
`huge` floats (inputs holding 1e30, results of exp and pow) never reach a sum, whose
result would depend on the order of the additions.

f16 and bf16 (in the graphs of about a third of the seeds, `Builder.half`; the others are
drawn exactly as without them) have fewer bits than the comparison's tolerance, so their
values must come out bit-identical: they are all exact, taken only by ops whose result is
exact given exact operands (the IEEE operations, comparisons, casts of exact values, layout,
max/min, sums and means, which accumulate in f64, and avg_pool, which sums in f32 in the
reference's order). matmul and conv take only `coarse` f16/bf16 inputs (multiples of 1/4
in [-3, 3]): every f32 sum of their products is exact in any order.
"""

from __future__ import annotations

import os
import random
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import ml_dtypes
import numpy as np

FLOATS = ("f32", "f64")
HALVES = ("f16", "bf16")
INTS = ("i32", "i64")
NUMS = FLOATS + INTS
ALL = NUMS + ("bool",)
NUMPY = {
    "f32": np.float32,
    "f64": np.float64,
    "i32": np.int32,
    "i64": np.int64,
    "bool": np.bool_,
    "f16": np.float16,
    "bf16": ml_dtypes.bfloat16,
}
HALF_SHARE = 0.3  # of the graphs draw f16 and bf16 too

# Odd sizes that are not multiples of any vector width or tile, plus the edge cases 1 and 2.
SIZES = (1, 2, 3, 5, 7, 9, 13, 17)
SIZE_WEIGHTS = (3, 3, 4, 4, 3, 2, 1, 1)
BATCHES = (1, 2, 3, 5)
MAX_BATCH = max(BATCHES)
MAX_ELEMENTS = 2500  # per value, with the batch at its largest: keeps the reference fast

# Native-backend bugs the fuzzer found and that are not fixed yet: the generator steers
# around them (each has a strict-xfail regression test in test_fuzz_native.py) unless
# MDL_FUZZ_KNOWN_BUGS=1. Remove an entry when its bug is fixed.
KNOWN_BUGS: dict[str, str] = {
    # both backends take the second operand of a max/min tie (-0 and +0), as numpy's x86
    # vector code does, but numpy's reductions combine elements in vector order, so the
    # sign of a zero from reduce_max/reduce_min/max_pool over mixed zeros may still differ
    "signed-zero-max-min": "the sign of a zero from a max/min reduction over -0.0 and +0.0 "
    "follows numpy's vector order in the reference, sequential order natively",
}
AVOID_KNOWN_BUGS = os.environ.get("MDL_FUZZ_KNOWN_BUGS", "") in ("", "0")


def avoid(bug: str) -> bool:
    return AVOID_KNOWN_BUGS and bug in KNOWN_BUGS


@dataclass(frozen=True, slots=True)
class Dim:
    """k * B + c, B being the sub-graph's batch symbol (at least 1 at run time)."""

    k: int = 0
    c: int = 0

    @property
    def known(self) -> bool:
        return self.k == 0

    def at(self, batch: int) -> int:
        return self.k * batch + self.c

    def text(self, sym: str) -> str:
        if self.k == 0:
            return str(self.c)
        head = sym if self.k == 1 else f"{self.k} * {sym}"
        if self.c == 0:
            return head
        return f"{head} + {self.c}" if self.c > 0 else f"{head} - {-self.c}"

    def __add__(self, other: Dim) -> Dim:
        return Dim(self.k + other.k, self.c + other.c)


ONE = Dim(0, 1)
Shape = tuple[Dim, ...]


def const(n: int) -> Dim:
    return Dim(0, n)


def elements(shape: Shape, batch: int = MAX_BATCH) -> int:
    return int(np.prod([d.at(batch) for d in shape], dtype=np.int64))


def broadcast(a: Shape, b: Shape) -> Shape | None:
    """numpy broadcasting with dims compared as polynomials (B only with B or 1)."""
    out: list[Dim] = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else ONE
        y = b[-i] if i <= len(b) else ONE
        if x == y or y == ONE:
            out.append(x)
        elif x == ONE:
            out.append(y)
        else:
            return None
    return tuple(reversed(out))


@dataclass(frozen=True, slots=True)
class Val:
    name: str
    dtype: str
    shape: Shape
    exact: bool = True
    # lo <= v < hi for every element of an int value, when known (gather indices need it)
    range: tuple[int, int] | None = None
    kind: str = "node"  # "input", "param" or "node"
    # floats that may hold finite values so large (1e30) that a sum of them depends on the
    # order of the additions: sums, means, matmuls and convolutions take none
    huge: bool = False
    # floats whose zeros may differ in sign between the backends (KNOWN_BUGS): nothing that
    # tells -0 from +0 (a divisor, 1 / sqrt) takes them
    zsign: bool = False
    special: bool = False  # an input whose array gets NaN, infinities, signed zeros...
    coarse: bool = False  # an f16/bf16 input of multiples of 1/4 in [-3, 3] (for products)

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True, slots=True)
class Stmt:
    text: str
    defines: tuple[str, ...]
    uses: tuple[str, ...]
    op: str  # the primitive (or stdlib layer) the statement is meant to exercise


@dataclass(frozen=True)
class SubGraph:
    """One random graph: its statements, inputs and outputs, and its input arrays."""

    seed: int
    index: int
    sym: str
    batch: int
    inputs: tuple[Val, ...]
    stmts: tuple[Stmt, ...]
    outputs: tuple[tuple[str, Val], ...]  # (output name, the value it returns)
    imports: frozenset[str]
    arrays: dict[str, np.ndarray] = field(compare=False, repr=False)
    # inputs for a second call with another batch size (the same code must serve both)
    alt_batch: int = 0
    alt_arrays: dict[str, np.ndarray] = field(default_factory=dict, compare=False, repr=False)

    @property
    def uses_batch(self) -> bool:
        return any(not d.known for v in self.inputs for d in v.shape)

    def restrict(self, output_names: Sequence[str]) -> SubGraph:
        """Only what `output_names` depend on (the first input stays: it binds the batch)."""
        outputs = tuple((n, v) for n, v in self.outputs if n in output_names)
        needed = {v.name for _, v in outputs}
        kept: list[Stmt] = []
        for stmt in reversed(self.stmts):
            if needed & set(stmt.defines):
                kept.append(stmt)
                needed |= set(stmt.uses)
        inputs = tuple(v for i, v in enumerate(self.inputs) if v.name in needed or i == 0)
        stmts = tuple(reversed(kept))
        return replace(
            self,
            inputs=inputs,
            stmts=stmts,
            imports=self.imports if any(s.op == "nn" for s in stmts) else frozenset(),
            outputs=outputs,
            arrays={v.name: self.arrays[v.name] for v in inputs},
            alt_arrays={v.name: self.alt_arrays[v.name] for v in inputs if self.alt_arrays},
        )


class Builder:
    """Grows one sub-graph: a pool of typed values and the statements that made them."""

    def __init__(self, seed: int, index: int):
        self.seed = seed
        self.rng = random.Random(seed)
        self.prefix = f"g{index}_"
        self.sym = f"B{index}"
        # from a stream of its own, so that the graphs without halves stay as they were
        self.half = random.Random(f"half-{seed}").random() < HALF_SHARE
        self.use_batch = self.rng.random() < 0.5
        self.batch = self.rng.choice(BATCHES)
        self.values: list[Val] = []
        self.inputs: list[Val] = []
        self.stmts: list[Stmt] = []
        self.imports: set[str] = set()
        self.uses: Counter[str] = Counter()
        self._counter = 0
        if self.use_batch:  # the first input binds the batch symbol alone on its first axis
            rest = self.rand_shape(self.rng.randint(0, 2), batch_first=False)
            self.new_input(self.rng.choice(self.kinds(ALL)), (Dim(1, 0), *rest))

    def kinds(self, dtypes: Sequence[str]) -> tuple[str, ...]:
        """`dtypes`, plus f16 and bf16 (twice: drawn more often) when they hold a float and
        this graph draws halves; for ops whose result is exact given exact operands."""
        if self.half and any(d in FLOATS for d in dtypes):
            return (*dtypes, *HALVES, *HALVES)
        return tuple(dtypes)

    # --- names, dims, shapes -------------------------------------------------------------

    def fresh(self, stem: str) -> str:
        self._counter += 1
        return f"{self.prefix}{stem}{self._counter}"

    def dim(self, d: Dim) -> str:
        return d.text(self.sym)

    def type_text(self, v: Val) -> str:
        return f"{v.dtype}[{', '.join(self.dim(d) for d in v.shape)}]"

    def size(self) -> int:
        return self.rng.choices(SIZES, SIZE_WEIGHTS)[0]

    def rand_shape(self, rank: int | None = None, batch_first: bool = True) -> Shape:
        rank = self.rng.choice((0, 1, 1, 2, 2, 2, 3, 3, 4)) if rank is None else rank
        for _ in range(20):
            dims = [const(self.size()) for _ in range(rank)]
            if batch_first and rank and self.use_batch and self.rng.random() < 0.5:
                dims[0] = Dim(1, 0)
            if elements(tuple(dims)) <= MAX_ELEMENTS // 4:
                return tuple(dims)
        return tuple(ONE for _ in range(rank))

    def fits(self, shape: Shape) -> bool:
        return len(shape) <= 5 and elements(shape) <= MAX_ELEMENTS

    # --- values ----------------------------------------------------------------------------

    def new_input(
        self,
        dtype: str,
        shape: Shape,
        range_: tuple[int, int] | None = None,
        calm: bool = False,
        coarse: bool = False,
    ) -> Val:
        """A model input; its array gets special values sometimes, huge ones unless `calm`;
        `coarse` (f16/bf16): multiples of 1/4 in [-3, 3] only."""
        coarse = coarse and dtype in HALVES
        special = dtype in FLOATS + HALVES and not coarse and self.rng.random() < 0.3
        huge = special and not calm and self.rng.random() < 0.4
        v = Val(self.fresh("x"), dtype, shape, True, range_, "input", huge, False, special, coarse)
        self.inputs.append(v)
        self.values.append(v)
        return v

    def new_param(self, dtype: str, shape: Shape) -> Val:
        v = Val(self.fresh("w"), dtype, shape, True, None, "param")
        self.statement(f"param {v.name}: {self.type_text(v)}", (v.name,), (), "param")
        self.values.append(v)
        return v

    def statement(
        self, text: str, defines: tuple[str, ...], uses: tuple[str, ...], op: str
    ) -> None:
        self.stmts.append(Stmt(text, defines, uses, op))
        self.uses.update(uses)

    def new_operand(
        self,
        dtype: str,
        shape: Shape,
        weight: float = 0.1,
        calm: bool = False,
        coarse: bool = False,
    ) -> Val:
        """A fresh leaf: a model input, or with probability `weight` a weight (floats of a
        known shape only). Weights are natural as the right side of a matmul or the kernel
        of a conv; elsewhere computation on them alone is folded at compile time. A
        `coarse` f16/bf16 operand is an input (weights are random)."""
        coarse = coarse and dtype in HALVES
        floats = FLOATS + HALVES
        if dtype in floats and not coarse and all(d.known for d in shape):
            if self.rng.random() < weight:
                return self.new_param(dtype, shape)
        return self.new_input(dtype, shape, calm=calm, coarse=coarse)

    def pick(
        self, pred: Callable[[Val], bool], fresh: float = 0.2, avoid: Sequence[Val] = ()
    ) -> Val | None:
        """An existing value satisfying `pred`, favouring values nothing uses yet and values
        not in `avoid` (an op applied to one value twice, `x // x`, tests less)."""
        if self.rng.random() < fresh:
            return None
        found = [v for v in self.values if pred(v)]
        others = [v for v in found if all(v is not a for a in avoid)]
        if avoid and self.rng.random() < 0.9:
            found = others  # none left: the caller makes a fresh operand
        if not found:
            return None
        weights = [4 if v.kind == "node" and not self.uses[v.name] else 1 for v in found]
        return self.rng.choices(found, weights)[0]

    def operand(
        self,
        dtypes: Sequence[str],
        pred: Callable[[Val], bool] = lambda v: True,
        exact: bool = False,
        shape: Callable[[], Shape] | None = None,
        calm: bool = False,
        signed: bool = False,
        coarse: bool = False,
    ) -> Val:
        """An operand of one of `dtypes` satisfying `pred`: an existing value, or a fresh one.
        `exact`: only exact floats; `calm`: none that may be huge; `signed`: none whose
        zeros may have the wrong sign; `coarse`: f16/bf16 only if coarse."""
        v = self.pick(
            lambda v: (
                v.dtype in dtypes and self.fits_flags(v, exact, calm, signed, coarse) and pred(v)
            )
        )
        if v is not None:
            return v
        dtype, made = self.rng.choice(dtypes), shape() if shape else self.rand_shape()
        return self.new_operand(dtype, made, calm=calm, coarse=coarse)

    @staticmethod
    def fits_flags(
        v: Val, exact: bool = False, calm: bool = False, signed: bool = False, coarse: bool = False
    ) -> bool:
        return (
            (v.exact or not exact)
            and not (calm and v.huge)
            and not (signed and v.zsign)
            and not (coarse and v.dtype in HALVES and not v.coarse)
        )

    def emit(
        self,
        op: str,
        expr: str,
        operands: Sequence[Val],
        outs: Sequence[tuple[str, Shape]],
        exact: bool = True,
        range_: tuple[int, int] | None = None,
        extra_uses: tuple[str, ...] = (),
        huge: bool | None = None,
        zsign: bool | None = None,
    ) -> list[Val]:
        """`let n1, n2 = expr`: one new value per (dtype, shape) in `outs`. Float results
        are huge / zsign as said, else when an operand is."""
        huge = any(v.huge for v in operands) if huge is None else huge
        zsign = any(v.zsign for v in operands) if zsign is None else zsign
        if not exact and any(dtype in HALVES for dtype, _ in outs):
            raise AssertionError(f"generator bug: `{expr}` makes an inexact f16/bf16 value")
        made = [
            Val(self.fresh("v"), dtype, shape, exact, range_, "node", huge, zsign)
            if dtype in FLOATS + HALVES
            else Val(self.fresh("v"), dtype, shape, True, range_)
            for dtype, shape in outs
        ]
        names = tuple(v.name for v in made)
        uses = tuple(dict.fromkeys([*(v.name for v in operands), *extra_uses]))
        self.statement(f"let {', '.join(names)} = {expr}", names, uses, op)
        self.values.extend(made)
        return made

    def literal(self, dtype: str, half: bool = True) -> str:
        """A number written where a tensor goes; it takes the other operand's dtype.
        `half`: 0.5 may be it."""
        r = self.rng
        if dtype == "bool":
            return r.choice(("true", "false"))
        if dtype in INTS:
            n = r.choice((0, 1, 2, 3, 5, 7, 100, -1, -2, -3, -7))
            return f"({n})" if n < 0 else str(n)
        floats = ("2.0", "3.0", "1e-3", "0.0", "(-1.5)", "(-0.25)", "inf", "nan")
        return r.choice(floats + (("0.5",) if half else ()))

    def finish(self) -> SubGraph:
        node_vals = [v for v in self.values if v.kind == "node"]
        sinks = [v for v in node_vals if not self.uses[v.name]] or node_vals[-1:]
        outputs = [(v.name, v) for v in sinks]
        # the same value twice, an input or a weight returned as is: outputs that alias
        if self.rng.random() < 0.15:
            v = self.rng.choice(sinks)
            outputs.append((f"{v.name}_again", v))
        leaves = [v for v in self.values if v.kind != "node"]
        if leaves and self.rng.random() < 0.1:
            v = self.rng.choice(leaves)
            outputs.append((f"{v.name}_out", v))
        data = np.random.default_rng(self.seed)
        arrays = {v.name: input_array(v, self.batch, data) for v in self.inputs}
        alt = BATCHES[(BATCHES.index(self.batch) + 1) % len(BATCHES)] if self.use_batch else 0
        alt_arrays = {v.name: input_array(v, alt, data) for v in self.inputs} if alt else {}
        return SubGraph(
            self.seed,
            int(self.prefix[1:-1]),
            self.sym,
            self.batch,
            tuple(self.inputs),
            tuple(self.stmts),
            tuple(outputs),
            frozenset(self.imports),
            arrays,
            alt,
            alt_arrays,
        )


def partner_shape(b: Builder, shape: Shape) -> Shape:
    """A shape that broadcasts with `shape`: fewer leading axes, some dims 1, or a new one."""
    r = b.rng
    dims = list(shape)
    if dims and r.random() < 0.3:
        dims = dims[r.randint(1, len(dims)) :]
    dims = [ONE if r.random() < 0.25 else d for d in dims]
    if len(dims) == len(shape) < 4 and r.random() < 0.15:  # a new leading axis
        dims.insert(0, const(b.size()))
    return tuple(dims)


def kwargs(items: list[tuple[str, str | None]]) -> str:
    return "".join(f", {k}={v}" for k, v in items if v is not None)


# --- input arrays ----------------------------------------------------------------------------

_SPECIAL = {
    "f32": (np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 88.5, -104.0, 2.0),
    "f64": (np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-310, 710.0, -746.0, 2.0),
    "f16": (np.nan, np.inf, -np.inf, 0.0, -0.0, 6e-8, 11.1, -65504.0, 2.0),
    "bf16": (np.nan, np.inf, -np.inf, 0.0, -0.0, 1e-40, 88.5, -104.0, 2.0),
}
_HUGE = {
    "f32": (1e30, -1e30, 3e38),
    "f64": (1e300, -1e300, 1.7e308),
    "f16": (65504.0, -60000.0),
    "bf16": (1e30, -1e30, 3e38),
}


def input_array(v: Val, batch: int, rng: np.random.Generator) -> np.ndarray:
    shape = tuple(d.at(batch) for d in v.shape)
    dtype = NUMPY[v.dtype]
    if v.dtype == "bool":
        return np.asarray(rng.random(shape) < 0.5)
    if v.dtype in INTS:
        if v.range is not None:
            return np.asarray(rng.integers(v.range[0], v.range[1], shape), dtype=dtype)
        out = np.asarray(rng.integers(-9, 10, shape), dtype=dtype)
        if rng.random() < 0.25:  # the ends of the range, where arithmetic wraps
            info = np.iinfo(dtype)
            specials = np.array([info.min, info.max, info.min + 1, -1, 0], dtype=dtype)
            out = np.where(rng.random(shape) < 0.2, rng.choice(specials, size=shape), out)
        return np.asarray(out, dtype=dtype)
    if v.coarse:
        return np.asarray(rng.integers(-12, 13, shape) * 0.25, dtype=dtype)
    scale = rng.choice((0.1, 1.0, 1.0, 3.0))
    out = np.asarray(rng.standard_normal(shape) * scale, dtype=dtype)
    if v.special:  # NaN, infinities, signed zeros, overflow edges, subnormals
        specials = _SPECIAL[v.dtype]
        specials += () if avoid("pow-half-is-sqrt") else (0.5,)
        specials += _HUGE[v.dtype] if v.huge else ()
        chosen = rng.choice(np.array(specials, dtype=dtype), size=shape)
        out = np.where(rng.random(shape) < 0.15, chosen, out)
    return np.asarray(out, dtype=dtype)


# --- one model from several sub-graphs -------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One mdl model holding independent sub-graphs, each with its own outputs."""

    graphs: tuple[SubGraph, ...]
    source: str
    owner: dict[str, SubGraph]  # output name -> the sub-graph that computes it
    # the inputs of each call: a second call with other batch sizes when there are any
    calls: tuple[dict[str, np.ndarray], ...]

    @staticmethod
    def of(graphs: Sequence[SubGraph]) -> Case:
        first = {k: a for g in graphs for k, a in g.arrays.items()}
        calls = [first]
        if any(g.alt_arrays for g in graphs):
            calls.append({k: a for g in graphs for k, a in (g.alt_arrays or g.arrays).items()})
        return Case(
            tuple(graphs),
            model_source(graphs),
            {name: g for g in graphs for name, _ in g.outputs},
            tuple(calls),
        )

    @property
    def inputs(self) -> dict[str, np.ndarray]:
        return self.calls[0]

    @property
    def seeds(self) -> tuple[int, ...]:
        return tuple(g.seed for g in self.graphs)


def _type(g: SubGraph, v: Val) -> str:
    return f"{v.dtype}[{', '.join(d.text(g.sym) for d in v.shape)}]"


def model_source(graphs: Sequence[SubGraph]) -> str:
    imports = sorted(set().union(*(g.imports for g in graphs)))
    params: list[str] = []
    for g in graphs:
        for v in g.inputs:
            bound = f" in {v.range[0]}..{v.range[1]}" if v.range is not None else ""
            params.append(f"{v.name}: {_type(g, v)}{bound}")
    outs = [f"{name}: {_type(g, v)}" for g in graphs for name, v in g.outputs]
    lines = [f"import {m}" for m in imports]
    seeds = ", ".join(str(g.seed) for g in graphs)
    lines.append(f"# differential fuzz case: graph seeds {seeds}")
    lines.append("model Fuzz(")
    lines.extend(f"    {p}," for p in params)
    lines.append(") -> (")
    lines.extend(f"    {o}," for o in outs)
    lines.append(") {")
    for g in graphs:
        batch = f" ({g.sym} = {g.batch}, then {g.alt_batch})" if g.uses_batch else ""
        lines.append(f"    # graph {g.seed}{batch}")
        lines.extend(f"    {s.text}" for s in g.stmts)
    lines.append(f"    return {', '.join(v.name for g in graphs for _, v in g.outputs)}")
    lines.append("}")
    return "\n".join(lines) + "\n"


def generate(seed: int, index: int = 0) -> SubGraph:
    """The sub-graph of graph seed `seed`, its names prefixed `g{index}_`."""
    from graphgen_ops import OPS

    b = Builder(seed, index)
    names = sorted(OPS)
    steps = b.rng.randint(3, 12)
    done = 0
    for _ in range(steps * 4):
        if done == steps:
            break
        if OPS[b.rng.choice(names)](b):
            done += 1
    if not any(v.kind == "node" for v in b.values):
        OPS["add"](b)
    return b.finish()


def make_case(seeds: Sequence[int]) -> Case:
    return Case.of([generate(s, i) for i, s in enumerate(seeds)])
