"""`mdlc import` (ONNX -> .mdl + .safetensors) and `mdlc export` (.mdl + weights -> ONNX):
the commands; the work is in `onnx_import/` and `onnx_export/`."""

from __future__ import annotations

import argparse
import os

from .cli import EXIT_ERROR, EXIT_OK, Console, UsageError


def cmd_import(args: argparse.Namespace, console: Console) -> int:
    from .driver import import_onnx

    out = args.output
    if not out.endswith(".mdl"):
        raise UsageError(f"`-o {out}`: the output is mdl source, name it `*.mdl`")
    if os.path.isdir(out):
        raise UsageError(f"`-o {out}` is a folder; name the file to write")
    with console.status(f"importing {args.model}"):
        diags = import_onnx(args.model, out)
    console.report(diags)
    if any(d.is_error for d in diags):
        return EXIT_ERROR
    console.err.write(f"wrote {out} and {out[:-4]}.safetensors\n")
    return EXIT_OK


def cmd_export(args: argparse.Namespace, console: Console) -> int:
    from .driver import export_onnx

    out = args.output
    if not out.endswith(".onnx"):
        raise UsageError(f"`-o {out}`: name the ONNX file `*.onnx`")
    if os.path.isdir(out):
        raise UsageError(f"`-o {out}` is a folder; name the file to write")
    with console.status(f"exporting {args.file}"):
        diags = export_onnx(args.file, args.weights, out, args.defines)
    console.report(diags)
    if any(d.is_error for d in diags):
        return EXIT_ERROR
    console.err.write(f"wrote {out}\n")
    return EXIT_OK
