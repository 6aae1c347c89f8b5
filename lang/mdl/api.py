"""The Python API: `mdl.load(path, weights=...)` -> a callable `Model`."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import driver
from .diagnostics import Diagnostic, MdlError


class Model:
    """A compiled model. Call it with arrays, positionally in declared order or by name."""

    def __init__(
        self,
        front: driver.Frontend,
        weights: dict[str, np.ndarray],
        backend: str,
        cache: bool = True,
        threads: int | None = None,
        fast_math: bool = False,
    ):
        assert front.graph is not None
        self.graph = front.graph
        self.weights = weights
        self.backend = backend
        self._native = (
            driver.compile_native(self.graph, weights, cache, threads, fast_math)
            if backend == "native"
            else None
        )
        self.input_names = [i.name for i in self.graph.inputs]
        self.output_names = self.graph.output_names

    def __repr__(self) -> str:
        ins = ", ".join(f"{i.name}: {i.value.type}" for i in self.graph.inputs)
        outs = ", ".join(f"{n}: {v.type}" for n, v in self.graph.outputs)
        return f"<mdl model {self.graph.name}({ins}) -> ({outs}) backend={self.backend}>"

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if not kwargs and len(args) == len(self.input_names):  # the common case, kept short
            outs = self.run(dict(zip(self.input_names, args, strict=True)))
            if len(self.output_names) == 1:
                return outs[self.output_names[0]]
            return tuple(outs[n] for n in self.output_names)
        if len(args) > len(self.input_names):
            raise MdlError(
                [
                    Diagnostic(
                        "E0602",
                        f"model `{self.graph.name}` takes {len(self.input_names)} "
                        f"inputs, {len(args)} given",
                    )
                ]
            )
        inputs: dict[str, Any] = dict(zip(self.input_names, args, strict=False))
        for k, v in kwargs.items():
            if k in inputs:
                raise MdlError([Diagnostic("E0602", f"input `{k}` given twice")])
            inputs[k] = v
        outs = self.run(inputs)
        values = tuple(outs[n] for n in self.output_names)
        return values[0] if len(values) == 1 else values

    def run(self, inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
        if self._native is not None:
            return self._native.run(inputs)
        return driver.run_reference(self.graph, self.weights, inputs)


def load(
    path: str,
    weights: str | Mapping[str, np.ndarray] | None = None,
    *,
    backend: str | None = None,
    defines: Mapping[str, Any] | None = None,
    cache: bool = True,
    threads: int | None = None,
    fast_math: bool = False,
) -> Model:
    """Compile the model at `path` bound to `weights` (a file or a dict of arrays).

    backend: "native" (machine code for this CPU) or "ref" (the numpy reference
    interpreter); by default native, or the reference with a warning for a model the
    native backend cannot compile (E0801; none today). defines: compile-time arguments. cache: keep compiled code on disk.
    threads: the native code's threads (default: MDL_NUM_THREADS, else every core this
    process may use); results are bit-identical whatever the count.
    fast_math: let LLVM reorder float arithmetic (vectorized reductions, FMA contraction,
    reciprocals; never assuming no NaN/Inf): faster, results no longer bit-equal to the
    reference, still the same on any thread count. Native backend only.
    """
    if backend not in (None, "ref", "native"):
        raise MdlError([Diagnostic("E0704", f'unknown backend `{backend}`: use "native" or "ref"')])
    front = driver.compile_model(str(path), defines)
    assert front.graph is not None
    if weights is None:
        if front.graph.params:
            raise MdlError(
                [
                    Diagnostic(
                        "E0503",
                        f"model `{front.graph.name}` has parameters but no weights were given",
                        help="pass weights=... (a file or a dict of arrays); "
                        "`mdlc init` makes initial ones",
                    )
                ]
            )
        bound: dict[str, np.ndarray] = {}
    else:
        got, diags = driver.load_weights(front.graph, weights)
        if got is None:
            raise MdlError(diags)
        bound = got
    if threads is not None and (not isinstance(threads, int) or threads < 1):
        raise MdlError(
            [Diagnostic("E0704", f"threads must be a positive integer, got {threads!r}")]
        )
    if backend is not None:
        return Model(front, bound, backend, cache, threads, fast_math)
    try:
        return Model(front, bound, "native", cache, threads, fast_math)
    except MdlError as e:
        if not all(d.code == "E0801" for d in e.diagnostics if d.is_error):
            raise
        warnings.warn(
            f"{e.diagnostics[0].message}: running `{front.graph.name}` on the reference "
            'interpreter (pass backend="ref" to choose it, or "native" to make this an error)',
            RuntimeWarning,
            stacklevel=2,
        )
        return Model(front, bound, "ref", cache, threads)


def init_weights(
    path: str, seed: int = 0, random: bool = False, defines: Mapping[str, Any] | None = None
) -> dict[str, np.ndarray]:
    front = driver.compile_model(str(path), defines)
    assert front.graph is not None
    return driver.init_weights(front.graph, seed, random)


def check(path: str, defines: Mapping[str, Any] | None = None) -> list[Diagnostic]:
    return driver.check_file(str(path), defines).diagnostics
