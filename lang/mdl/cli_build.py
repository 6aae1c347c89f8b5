"""`mdlc build`: a model + weights -> an executable, shared library + C header, object,
LLVM IR, assembly or header (the work is `backend.aot.build`; this is the command).

`--emit shared` and `--emit object` also write `PREFIX.h` beside the artifact;
`--weights-mode sidecar` writes `PREFIX.weights.safetensors` beside it too.
"""

from __future__ import annotations

import argparse
import os

from .cli import EXIT_ERROR, EXIT_OK, Console, UsageError


def cmd_build(args: argparse.Namespace, console: Console) -> int:
    from .cli_commands import _has_errors, _load_model
    from .weights import WeightsError

    emit_kind = getattr(args, "emit", None) or "exe"
    weights_mode = getattr(args, "weights_mode", None) or "embed"
    out = args.output
    if os.path.isdir(out):
        raise UsageError(f"`-o {out}` is a folder; name the file to write")
    graph = _load_model(args.file, args.defines, console)
    if graph is None:
        return EXIT_ERROR
    from .backend import aot
    from .driver import build_artifact, load_weights

    if weights_mode == "sidecar" and emit_kind in ("exe", "shared", "object"):
        sidecar = os.path.join(os.path.dirname(os.path.abspath(out)), aot.sidecar_name(out, graph))
        exists = os.path.exists(sidecar) and os.path.exists(args.weights)
        if exists and os.path.samefile(args.weights, sidecar):
            raise UsageError(
                f"the sidecar weights `{sidecar}` would overwrite `--weights {args.weights}`; "
                "write the artifact elsewhere or rename it"
            )
    try:
        with console.status(f"reading {args.weights}"):
            weights, diags = load_weights(graph, args.weights)
    except WeightsError as e:
        weights, diags = None, [e.to_diagnostic()]
    console.report(diags)
    if weights is None or _has_errors(diags):
        return EXIT_ERROR
    cpu = args.cpu or aot.default_cpu()
    try:
        with console.status(f"building {emit_kind} for {cpu}"):
            written = build_artifact(
                graph,
                weights,
                out,
                emit_kind=emit_kind,
                cpu=cpu,
                weights_mode=weights_mode,
                source_name=os.path.basename(args.file),
                fast_math=bool(getattr(args, "fast_math", False)),
            )
    except aot.UnknownCpu:
        raise UsageError(
            f"unknown CPU `{cpu}` (try x86-64-v3, x86-64-v4, a name such as skylake, or native)"
        ) from None
    for artifact in written:
        console.err.write(f"wrote {artifact.path} ({artifact.kind})\n")
    return EXIT_OK
