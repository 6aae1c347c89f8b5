"""Memory planning: loop-IR `Program` -> `MemoryPlan` (the temporaries' places in one arena).

A temporary lives from the first kernel that uses it to the last. Temporaries
whose lives do not overlap share a slot of the arena; a slot is as large as
its largest member, and the slots lie one after the other, each 64-byte
aligned. Sizes may be symbolic (a batch dim), so the plan keeps formulas: the
caller evaluates them once per set of run-time dims (`layout`), the JIT's call
plan in Python and the artifacts' C runtime the same way. The slot choice is
made at compile time with the symbols at a representative value; whatever the
real values, two buffers used by the same kernel never share memory, which is
what the kernels' `noalias` promises.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..dims import Dim
from . import loopir as ir

ALIGN = 64
REPRESENTATIVE = 16  # the value of every symbol when comparing sizes to pick a slot


@dataclass(frozen=True)
class MemoryPlan:
    slots: tuple[tuple[str, ...], ...]  # the temporaries of each slot, in order of first use
    sizes: Mapping[str, Dim]  # bytes of each temporary
    slot_of: Mapping[str, int]
    # bytes each thread mallocs for the chunk buffers (per-thread scratch) of the parallel
    # loop that needs the most; loops run one after another (not in the arena)
    per_thread: int = 0

    def layout(self, env: Mapping[str, int]) -> tuple[dict[str, int], int]:
        """Byte offsets of the temporaries and the arena's size for these dims."""
        offsets: dict[str, int] = {}
        total = 0
        for members in self.slots:
            size = max(self.sizes[name].evaluate(env) for name in members)
            for name in members:
                offsets[name] = total
            total += _aligned(max(size, 0))
        return offsets, total

    def unshared_bytes(self, env: Mapping[str, int]) -> int:
        """What the temporaries would take without sharing (for the report)."""
        return sum(_aligned(max(d.evaluate(env), 0)) for d in self.sizes.values())

    def formula(self) -> str:
        """The arena's size in bytes as a formula of the symbols (before alignment)."""
        parts = []
        for members in self.slots:
            distinct = list(dict.fromkeys(self.sizes[name] for name in members))
            kept = [d for d in distinct if not any(_dominates(o, d) for o in distinct if o != d)]
            texts = [str(d) for d in kept]
            parts.append(texts[0] if len(texts) == 1 else f"max({', '.join(texts)})")
        return " + ".join(parts) if parts else "0"


def _dominates(a: Dim, b: Dim) -> bool:
    """a >= b for every value of the symbols (all >= 0): a - b has no negative coefficient."""
    diff = a - b
    return all(coef >= 0 for _, coef in diff.terms) and not any(
        not isinstance(atom, str) for mono, _ in diff.terms for atom, _ in mono
    )


def _aligned(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def buffer_bytes(buf: ir.Buffer) -> Dim:
    size = Dim.of(buf.dtype.itemsize)
    for d in buf.shape:
        size = size * Dim.of(d)
    return size


def lifetimes(program: ir.Program) -> dict[str, tuple[int, int]]:
    """First and last kernel using each temporary."""
    temps = {b.name for b in program.buffers if b.role == "temp"}
    life: dict[str, tuple[int, int]] = {}
    for k, kernel in enumerate(program.kernels):
        for name in ir.used_buffers(kernel.body):
            if name in temps:
                first, _ = life.get(name, (k, k))
                life[name] = (first, k)
    for name in temps:
        life.setdefault(name, (0, 0))  # never used: any slot will do
    return life


def plan_memory(program: ir.Program) -> MemoryPlan:
    """Greedy best fit in order of first use over the temporaries' lifetimes."""
    life = lifetimes(program)
    sizes = {b.name: buffer_bytes(b) for b in program.buffers if b.role == "temp"}
    rep = {s: REPRESENTATIVE for s in program.symbols}

    def at_rep(name: str) -> int:
        return max(sizes[name].evaluate(rep), 0)

    slots: list[list[str]] = []
    slot_end: list[int] = []  # last kernel of the slot's current member
    slot_size: list[int] = []  # largest member at the representative dims
    slot_of: dict[str, int] = {}
    for name in sorted(life, key=lambda n: (life[n][0], n)):
        first, last = life[name]
        need = at_rep(name)
        free = [s for s in range(len(slots)) if slot_end[s] < first]
        fitting = [s for s in free if slot_size[s] >= need]
        if fitting:
            s = min(fitting, key=lambda s: (slot_size[s], s))
        elif free:
            s = max(free, key=lambda s: (slot_size[s], -s))
        else:
            slots.append([])
            slot_end.append(-1)
            slot_size.append(0)
            s = len(slots) - 1
        slots[s].append(name)
        slot_end[s] = last
        slot_size[s] = max(slot_size[s], need)
        slot_of[name] = s
    return MemoryPlan(tuple(tuple(m) for m in slots), sizes, slot_of, per_thread_bytes(program))


def per_thread_bytes(program: ir.Program) -> int:
    """The scratch block of one thread: what the largest parallel loop needs (its chunks,
    each 64-byte aligned); emit.py gives every block this size (scratch.py)."""
    chunks = {b.name: b for b in program.chunks}
    most = 0
    for k in program.kernels:
        for st in k.body:
            names = [n for n in ir.used_buffers((st,)) if n in chunks]
            total = sum(int(buffer_bytes(chunks[n]).evaluate({})) + 64 for n in names)
            most = max(most, total)
    return most
