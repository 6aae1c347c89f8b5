"""The pipeline in order; nothing else knows it.

path -> resolve (read, parse, imports) -> elaborate (check + build the graph)
-> verify the graph -> [weights] -> interpreter. The CLI, the Python API and
(later) the language server call these functions and never reach into the
stages themselves.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .diagnostics import Diagnostic, MdlError
from .graph import Graph, GraphError, verify
from .syntax import ast


@dataclass
class Frontend:
    diagnostics: list[Diagnostic]
    sources: dict[str, str]
    graph: Graph | None = None
    types: dict[Any, Any] = field(default_factory=dict)
    module: Any = None

    @property
    def ok(self) -> bool:
        return not any(d.is_error for d in self.diagnostics)


def parse_define(text: str) -> tuple[str, int | float | bool]:
    """`L=6` -> ("L", 6); `eps=1e-3` -> float; `bias=false` -> bool."""
    name, sep, raw = text.partition("=")
    name, raw = name.strip(), raw.strip()
    if not sep or not name.isidentifier() or not raw:
        raise ValueError(f"expected NAME=VALUE, got `{text}`")
    if raw in ("true", "false"):
        return name, raw == "true"
    try:
        return name, int(raw.replace("_", ""))
    except ValueError:
        pass
    try:
        return name, float(raw)
    except ValueError:
        raise ValueError(f"`{raw}` is not an int, a float, `true` or `false`") from None


def check_file(
    path: str,
    defines: Mapping[str, Any] | None = None,
    *,
    require_model: bool = False,
    source: str | None = None,
    loader: Any = None,
) -> Frontend:
    """`source`: the text of `path` (an editor's unsaved buffer) instead of the file on disk;
    `loader`: a `resolve.Loader` to use (an editor's, with its overlays and parse cache)."""
    from pathlib import Path

    from .elaborate import Elaborator
    from .resolve import Loader

    loader = loader if loader is not None else Loader()
    if source is not None:
        loader.overlays[str(Path(path).resolve())] = source
    info = loader.load_file(path)
    diags = loader.diagnostics
    if info is None:
        return Frontend(diags, loader.sources)
    models = [d for d in info.tree.items if isinstance(d, ast.Decl) and d.kind == "model"]
    for extra in models[1:]:
        diags.append(
            Diagnostic(
                "E0108",
                "a file may define only one model",
                extra.name.span,
                help="move this model to a file of its own",
            )
        )
    syntax_errors = any(d.is_error and d.code.startswith("E00") for d in diags)
    front = Frontend(diags, loader.sources, module=info)
    if not models:
        if defines:
            diags.append(Diagnostic("E0406", f"`-D` given but `{info.path}` defines no model"))
        elif require_model:
            diags.append(
                Diagnostic(
                    "E0109",
                    f"`{info.path}` defines no model",
                    help="declare one with `model Name(x: f32[B, N]) -> f32[B, M] { ... }`",
                )
            )
    if syntax_errors:
        return front
    el = Elaborator()
    if models:
        graph = el.elaborate_model(models[0], info, dict(defines or {}))
        front.types = el.types
        if graph is not None and not any(d.is_error for d in el.diags):
            try:
                verify(graph)
                front.graph = graph
            except GraphError as e:
                el.diags.append(
                    Diagnostic(
                        "E0901",
                        f"internal compiler error: {e}",
                        models[0].name.span,
                        notes=("this is a bug in mdl; please report it",),
                    )
                )
    from .generic import check_unused

    check_unused(el, info, loader)
    front.types = el.types  # also what the generic checks of unused declarations found
    diags.extend(el.diags)
    return front


def compile_model(path: str, defines: Mapping[str, Any] | None = None) -> Frontend:
    """Like check_file, but raises MdlError unless a model graph comes out."""
    front = check_file(path, defines, require_model=True)
    if not front.ok or front.graph is None:
        raise MdlError(front.diagnostics or [Diagnostic("E0109", f"`{path}` defines no model")])
    return front


def param_specs(graph: Graph) -> list[Any]:
    from .weights import ParamSpec

    return [
        ParamSpec(
            p.path,
            p.value.type.dtype,
            tuple(int(d) for d in p.value.type.shape),
            p.is_buffer,
            p.span,
            p.init,
        )
        for p in graph.params
    ]


def init_weights(graph: Graph, seed: int = 0, random: bool = False) -> dict[str, np.ndarray]:
    from .initializers import initialize

    return initialize(param_specs(graph), seed, random_all=random)


def load_weights(
    graph: Graph, source: str | Mapping[str, np.ndarray]
) -> tuple[dict[str, np.ndarray] | None, list[Diagnostic]]:
    from .weights import bind_weights, read_weights
    from .weights_io import WeightsError

    if isinstance(source, Mapping):
        tensors, name = source, "<dict>"
    else:
        name = str(source)
        try:
            tensors = read_weights(name)
        except WeightsError as e:
            return None, [Diagnostic(e.code, e.message, help=getattr(e, "help", None))]
    bound, diags = bind_weights(param_specs(graph), tensors, name)
    if any(d.is_error for d in diags):
        return None, diags
    return bound, diags


def run_reference(
    graph: Graph, weights: Mapping[str, np.ndarray], inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    from .interp import run

    return run(graph, weights, inputs)


def prepare_native(
    graph: Graph, weights: Mapping[str, np.ndarray]
) -> tuple[Graph, Mapping[str, np.ndarray]]:
    """What every native compilation (JIT and artifacts) compiles: the graph optimised, with
    batch-norms and other weight-only computation folded into the weights it now knows. The reference interpreter keeps
    running the graph as elaborated, so every rewrite is checked against it."""
    from .optimize import fold_batchnorm, fold_parameters, optimize

    optimized = optimize(graph)
    optimized, weights = fold_batchnorm(optimized, weights)
    optimized, weights = fold_parameters(optimized, weights)  # e.g. every Dense's `weight.T`
    return optimize(optimized), weights


def native_memory(graph: Graph) -> Any:
    """The native code's arena plan (`backend.memplan.MemoryPlan`); None when it cannot compile."""
    from .backend.lower import UnsupportedDtype, UnsupportedOp, lower
    from .backend.memplan import plan_memory

    prepared, _ = prepare_native(graph, init_weights(graph))
    try:
        return plan_memory(lower(prepared))
    except (UnsupportedOp, UnsupportedDtype):
        return None


def build_artifact(
    graph: Graph, weights: Mapping[str, np.ndarray], out: str, **options: Any
) -> Any:
    """An ahead-of-time artifact (`mdlc build`) of the same code the JIT runs."""
    from .backend import aot

    prepared, prepared_weights = prepare_native(graph, weights)
    return aot.build(prepared, prepared_weights, out, **options)


def compile_native(
    graph: Graph,
    weights: Mapping[str, np.ndarray],
    cache: bool = True,
    threads: int | None = None,
    fast_math: bool = False,
) -> Any:
    """The graph as machine code for this host (the JIT); MdlError E0801 for what it cannot do
    yet. `fast_math`: relaxed float semantics (backend/fastmath.py), off by default."""
    from .backend.jit import NativeModel
    from .backend.lower import UnsupportedDtype, UnsupportedOp

    optimized, weights = prepare_native(graph, weights)
    try:
        return NativeModel(optimized, weights, cache=cache, threads=threads, fast_math=fast_math)
    except UnsupportedOp as e:
        raise MdlError(
            [
                Diagnostic(
                    "E0801",
                    f"the native backend cannot compile `{e.op}` yet",
                    e.node.span,
                    help='use the reference backend (`backend="ref"`)',
                )
            ]
        ) from None
    except UnsupportedDtype as e:
        raise MdlError(
            [
                Diagnostic(
                    "E0801",
                    f"the native backend does not support `{e.dtype}` yet",
                    help='use the reference backend (`backend="ref"`)',
                )
            ]
        ) from None


def import_onnx(model_path: str, out_mdl: str) -> list[Diagnostic]:
    """ONNX -> readable mdl source at `out_mdl` and its weights beside it (`.safetensors`)."""
    from .onnx_import import import_onnx as run_import

    return run_import(model_path, out_mdl)


def export_onnx(
    path: str, weights: Any, out: str, defines: Mapping[str, Any] | None = None
) -> list[Diagnostic]:
    """A model and its weights -> an ONNX file that onnxruntime runs."""
    from .onnx_export import export_onnx as run_export

    return run_export(path, weights, out, defines)
