"""Calling compiled code: numpy inputs -> checked pointers -> outputs, with little per-call work.

A `CallPlan` is made once per compiled model. Per call, the fast path checks
each input's type, dtype, rank, contiguity, constant dims and symbolic dims
(binding them) and index ranges with a few comparisons; anything unusual goes
to the reference interpreter's `bind_inputs`, which reports the precise error
(or copies a non-contiguous array). Pointer tables, the dims array and the
temporaries for the last seen dims live per thread, so concurrent calls on one
model never share scratch memory.
"""

from __future__ import annotations

import ctypes
import threading
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..diagnostics import Diagnostic, MdlError
from ..dims import Dim
from ..graph import Graph
from . import loopir as ir
from .memplan import ALIGN, plan_memory

_CONST, _SYMBOL, _EXPR = 0, 1, 2
_char_at = ctypes.c_char.from_buffer
_addressof = ctypes.addressof


def address(x: np.ndarray) -> int:
    """The data pointer of C-contiguous `x`. `x.ctypes.data` builds a ctypes helper object
    and costs about 1.5 us, twice per call of a one-input model (its input and output);
    the buffer protocol gives it in 0.3. Read-only, empty and ml_dtypes arrays (which
    export no buffer) take the slow way."""
    try:
        return _addressof(_char_at(x))
    except (TypeError, ValueError, BufferError):
        return x.ctypes.data


class CallPlan:
    def __init__(self, graph: Graph, program: ir.Program, fixed: Mapping[str, np.ndarray]):
        self.graph = graph
        self.program = program
        self.n = max(1, len(program.buffers))
        index = {b.name: i for i, b in enumerate(program.buffers)}
        self.fixed = [(index[name], arr) for name, arr in fixed.items()]
        self.inputs = []
        for inp in graph.inputs:
            t = inp.value.type
            axes = []
            for d in t.shape:
                d = Dim.of(d)
                if d.is_const:
                    axes.append((_CONST, int(d)))
                elif d.is_symbol:
                    axes.append((_SYMBOL, d.name))
                else:
                    axes.append((_EXPR, d))
            self.inputs.append(
                (
                    index[f"in.{inp.name}"],
                    inp.name,
                    t.dtype.numpy,
                    t.rank,
                    tuple(axes),
                    inp.index_range,
                )
            )
        self.memory = plan_memory(program)
        self.allocated = [
            (i, b) for i, b in enumerate(program.buffers) if b.role in ("temp", "output")
        ]
        self.output_names = {f"out.{name}": name for name, _ in graph.outputs}
        self.symbols = list(program.symbols)
        self._local = threading.local()

    def _state(self) -> Any:
        st = getattr(self._local, "state", None)
        if st is None:
            st = _ThreadState(self)
            self._local.state = st
        return st

    def _fast_bind(self, inputs: Mapping[str, Any], st: _ThreadState) -> dict[str, int] | None:
        if len(inputs) != len(self.inputs):
            return None
        env: dict[str, int] = {}
        for i, name, dtype, rank, axes, rng in self.inputs:
            x = inputs.get(name)
            if (
                type(x) is not np.ndarray
                or x.dtype != dtype
                or x.ndim != rank
                or not x.flags.c_contiguous
            ):
                return None
            shape = x.shape
            for axis, (kind, value) in enumerate(axes):
                n = shape[axis]
                if kind == _CONST:
                    if n != value:
                        return None
                elif kind == _SYMBOL:
                    seen = env.get(value)
                    if seen is None:
                        env[value] = n
                    elif seen != n:
                        return None
                else:
                    return None
            if rng is not None and x.size:
                lo, hi = (int(b.evaluate(env)) for b in rng)
                if x.min() < lo or x.max() >= hi:
                    return None
            st.ptrs[i] = address(x)
        return env

    def run(
        self, fn: Any, inputs: Mapping[str, Any], pool: int | None = None
    ) -> dict[str, np.ndarray]:
        st = self._state()
        env = self._fast_bind(inputs, st)
        if env is None:
            from ..interp import bind_inputs

            values, env = bind_inputs(self.graph, inputs)  # raises the precise MdlError
            by_name = {i.name: values[i.value.id] for i in self.graph.inputs}
            st.keep = [by_name[name] for _, name, *_ in self.inputs]  # copies stay alive
            for (i, *_), arr in zip(self.inputs, st.keep, strict=True):
                st.ptrs[i] = arr.ctypes.data
        key = tuple([env.get(s, 0) for s in self.symbols]) if self.symbols else ()
        if key != st.key:
            st.prepare(self, env, key)
        outputs = {}
        ptrs = st.ptrs
        for i, dtype, shape, name in st.outputs:
            arr = np.empty(shape, dtype)
            ptrs[i] = address(arr)
            outputs[name] = arr
        rc = fn(st.syms_at, st.ptrs_at, st.err_at, pool)
        if rc:
            message = self.program.errors[rc - 1]
            code, _, text = message.partition(":")
            raise MdlError([Diagnostic(code, text.strip().format(*list(st.err)))])
        return outputs  # in declared order: `prepare` sorted them


class _ThreadState:
    def __init__(self, plan: CallPlan):
        self.ptrs = (ctypes.c_void_p * plan.n)()
        for i, arr in plan.fixed:
            self.ptrs[i] = arr.ctypes.data
        self.syms = (ctypes.c_int64 * max(1, len(plan.symbols)))()
        self.err = (ctypes.c_int64 * 8)()
        self.syms_at = ctypes.addressof(self.syms)
        self.ptrs_at = ctypes.addressof(self.ptrs)
        self.err_at = ctypes.addressof(self.err)
        self.key: tuple | None = None
        self.temps: list[np.ndarray] = []
        self.outputs: list[tuple[int, Any, tuple[int, ...], str]] = []
        self.keep: list[np.ndarray] = []

    def prepare(self, plan: CallPlan, env: dict[str, int], key: tuple) -> None:
        """The arena of temporaries (and output shapes) for these dims, kept until they change."""
        self.temps, self.outputs = [], []
        for i, buf in plan.allocated:
            shape = tuple(d.evaluate(env) for d in buf.shape)
            if any(n < 0 for n in shape):
                raise MdlError(
                    [
                        Diagnostic(
                            "E0605",
                            f"the inputs' sizes make `{buf.name}` {list(shape)}: a negative dimension "
                            "(an input is too small for a window or slice)",
                        )
                    ]
                )
            if buf.role == "output":
                self.outputs.append((i, buf.dtype.numpy, shape, plan.output_names[buf.name]))
        offsets, size = plan.memory.layout(env)
        arena = np.empty(size + ALIGN, np.uint8)
        base = arena.ctypes.data
        base += -base % ALIGN
        self.temps = [arena]
        for i, buf in plan.allocated:
            if buf.role == "temp":
                self.ptrs[i] = base + offsets[buf.name]
        order = {name: k for k, (name, _) in enumerate(plan.graph.outputs)}
        self.outputs.sort(key=lambda o: order[o[3]])  # results come back in declared order
        for j, s in enumerate(plan.symbols):
            self.syms[j] = env[s]
        self.key = key
