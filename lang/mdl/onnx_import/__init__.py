"""ONNX import: `model.onnx` -> readable mdl source (`out.mdl`) + weights (`out.safetensors`).

The stages, in order: reader.py (load and check the file: nothing in it is
trusted) -> convert.py (fold shapes, recognise standard layers with
patterns.py, convert the other nodes with ops*.py) -> layers.py (module
scopes become layer declarations, so weights keep their PyTorch paths) ->
writer.py (text). The result is formatted, then checked by the compiler's own
front end before anything is written: an import that would not compile is
reported, never written.
"""

from __future__ import annotations

import os
import re

from ..diagnostics import Diagnostic
from ..weights_io import printable
from .convert import Converted, convert_file
from .layers import NotNested, Plan, plan
from .names import NameTable, identifier
from .writer import Body, flat_path, render_body, type_text, weights_of

__all__ = ["import_onnx", "import_source"]


def import_onnx(path: str, out_mdl: str) -> list[Diagnostic]:
    """Import `path` into `out_mdl` and, beside it, `<stem>.safetensors`. Returns the
    diagnostics; nothing is written when there is an error."""
    from ..weights_io import WeightsError, atomic_write, write_safetensors

    text, weights, diags = import_source(path, out_mdl)
    if text is None or weights is None:
        return diags
    weights_path = os.path.splitext(out_mdl)[0] + ".safetensors"
    try:
        write_safetensors(weights_path, weights)
        atomic_write(out_mdl, text.encode("utf-8"))
    except WeightsError as e:
        return [*diags, Diagnostic(e.code, e.message, help=e.help)]
    return diags


def import_source(path: str, out_mdl: str) -> tuple[str | None, dict | None, list[Diagnostic]]:
    """The mdl text and weights `import_onnx` would write, checked; no files written."""
    try:
        return _import_source(path, out_mdl)
    except RecursionError:
        return None, None, [Diagnostic("E1005", "the graph nests too deeply to import")]
    except Exception as e:  # noqa: BLE001  (a bug here must still not be a traceback)
        return None, None, [_internal(f"{type(e).__name__}: {printable(str(e), 300)}", [], "")]


def _import_source(path: str, out_mdl: str) -> tuple[str | None, dict | None, list[Diagnostic]]:
    conv, diags = convert_file(path)
    if conv is None:
        return None, None, diags
    name = _model_name(out_mdl)
    try:
        the_plan = plan(conv)
    except NotNested:
        the_plan = flat_plan(conv)
    source = assemble(conv, the_plan, name, path)
    from ..format import format_source

    formatted, fdiags = format_source(source, out_mdl)
    if formatted is None:
        return None, None, [_internal("the generated mdl does not parse", fdiags, source)]
    weights = weights_of(conv, the_plan.key_of)
    problems = _check(formatted, out_mdl, weights)
    if problems:
        return None, None, [_internal("the generated mdl does not compile", problems, formatted)]
    return formatted, weights, diags


def _model_name(out_mdl: str) -> str:
    stem = os.path.splitext(os.path.basename(out_mdl))[0]
    words = [w for w in re.split(r"[^A-Za-z0-9]+", stem) if w]
    return identifier("".join(w[:1].upper() + w[1:] for w in words) or "Model", "Model")


def flat_plan(conv: Converted) -> Plan:
    """Every instance and parameter bound in the model body, under a flat name."""
    names = NameTable()
    callee, key_of, bindings = {}, {}, []
    for inst in conv.instances:
        flat = names.fresh(flat_path(inst.path))
        callee[inst.path] = key_of[inst.path] = flat
        bindings.append(f"let {flat} = {inst.decl}")
    from ..dims import Dim
    from ..types import TensorType

    declared = {}
    for p in conv.params:
        flat = names.fresh(flat_path(p.path))
        key_of[p.path] = declared[p.value] = flat
        t = TensorType(p.dtype, tuple(Dim.of(d) for d in p.array.shape))
        bindings.append(f"{'buffer' if p.is_buffer else 'param'} {flat}: {type_text(t)}")
    body = Body([n for n, _ in conv.graph.inputs], list(conv.graph.outputs), list(conv.stmts),
                bindings, names, declared)  # fmt: skip
    return Plan([], body, callee, key_of)


def assemble(conv: Converted, the_plan: Plan, name: str, onnx_path: str) -> str:
    body = the_plan.model_body
    input_names: dict[str, str] = {}
    params = []
    for onnx_name, t in conv.graph.inputs:
        ident = body.names.fresh(identifier(onnx_name, "x"))
        input_names[onnx_name] = ident
        params.append(f"{ident}: {type_text(t)}")
    outputs = []
    out_names = NameTable()
    for o in conv.graph.outputs:
        t = conv.values[o].type  # type: ignore[union-attr]
        outputs.append(f"{out_names.fresh(identifier(o, 'y'))}: {type_text(t)}")
    for s in conv.symbols:
        body.names.taken.add(s)
    lines = render_body(body, conv, the_plan.callee, input_names)
    header = [f"# Imported from {printable(os.path.basename(onnx_path), 200)} by `mdlc import`."]
    renamed = [f"`{printable(k, 80)}` is `{v}`" for k, v in input_names.items() if k != v]
    renamed += [f"`{printable(o, 80)}` is `{identifier(o, 'y')}`" for o in conv.graph.outputs
                if identifier(o, "y") != o]  # fmt: skip
    if renamed:
        header.append(f"# ONNX names that are not mdl names: {', '.join(renamed)}.")
    text = "\n".join(header) + "\n\n"
    everything = "\n".join([*the_plan.layers, *lines])
    imports = [m for m in ("nn", "transformer") if re.search(rf"\b{m}\.", everything)]
    if imports:
        text += "".join(f"import {m}\n" for m in imports) + "\n"
    for decl in the_plan.layers:
        text += decl + "\n\n"
    text += f"model {name}({', '.join(params)}) -> ({', '.join(outputs)}) {{\n"
    text += "\n".join(lines) + "\n}\n"
    return text


def _check(text: str, out_mdl: str, weights: dict) -> list[Diagnostic]:
    from ..driver import check_file, load_weights

    front = check_file(out_mdl, source=text, require_model=True)
    errors = [d for d in front.diagnostics if d.is_error]
    if errors or front.graph is None:
        return errors or [Diagnostic("E0901", "no model graph came out")]
    _, wdiags = load_weights(front.graph, weights)
    return [d for d in wdiags if d.is_error]


def _internal(what: str, problems: list[Diagnostic], source: str) -> Diagnostic:
    first = problems[0] if problems else None
    notes = tuple(f"{d}" for d in problems[:5])
    return Diagnostic(
        "E0901",
        f"internal error: {what}" + (f" ({first.code}: {first.message})" if first else ""),
        notes=(*notes, "this is a bug in the ONNX importer; please report it with the model"),
    )
