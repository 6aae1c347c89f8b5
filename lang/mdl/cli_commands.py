"""Parsed `mdlc` arguments -> work and an exit code: one function `cmd_<name>` per command.

`cli.run_command` calls them and turns what escapes into the exit-code
contract. A command reports problems as diagnostics on the `Console` and
returns 1, or raises `UsageError` for a command-line value it cannot use (2).
Heavy modules (numpy, the driver) are imported inside the commands.
"""

from __future__ import annotations

import argparse
import os
import re
import tempfile
from collections.abc import Mapping, Sequence
from typing import Any

from .cli import EXIT_ERROR, EXIT_OK, Console, UsageError
from .diagnostics import Diagnostic

_INPUT_NAME = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)=(.*)", re.S)


# --- shared steps --------------------------------------------------------------------------------


def _unreadable(path: str) -> Diagnostic | None:
    """E0701 when `path` cannot be opened for reading."""
    try:
        with open(path, "rb"):
            pass
    except OSError as e:
        return Diagnostic("E0701", f"cannot read `{path}`: {(e.strerror or str(e)).lower()}")
    return None


def _has_errors(diags: Sequence[Diagnostic]) -> bool:
    return any(d.is_error for d in diags)


def _front_end(
    path: str, defines: Mapping[str, Any], console: Console
) -> tuple[Any, list[Diagnostic]]:
    """The driver's `Frontend` for `path` (None if unreadable) and its diagnostics."""
    bad = _unreadable(path)
    if bad is not None:
        return None, [bad]
    from .driver import check_file

    fe = check_file(path, dict(defines) or None)
    console.sources.update(fe.sources)
    return fe, list(fe.diagnostics)


def _load_model(path: str, defines: Mapping[str, Any], console: Console) -> Any:
    """The elaborated `Graph` of the model in `path`, or None after reporting why not."""
    fe, diags = _front_end(path, defines, console)
    console.report(diags)
    if fe is None or not fe.ok:
        return None
    if fe.graph is None:
        console.report(
            [
                Diagnostic(
                    "E0109",
                    f"no model in `{path}`",
                    help="this command needs a file that defines a `model`",
                )
            ]
        )
        return None
    return fe.graph


def _extension(path: str, allowed: Sequence[str], what: str) -> str:
    ext = os.path.splitext(path)[1].lower()
    if ext not in allowed:
        choices = " or ".join(f"`{a}`" for a in allowed)
        raise UsageError(f"{what} `{path}` must end in {choices}")
    return ext


def write_file(path: str, data: bytes) -> Diagnostic | None:
    """Replace `path` atomically (temporary file + rename), keeping its permission bits.

    A symbolic link is followed, so the file it points to is replaced, not the link.
    """
    target = os.path.realpath(path)
    tmp = None
    try:
        try:
            mode = os.stat(target).st_mode & 0o7777
        except FileNotFoundError:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask  # what a plain open() would have created
        fd, tmp = tempfile.mkstemp(prefix=".mdlc-", suffix=".tmp", dir=os.path.dirname(target))
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        tmp = None
    except OSError as e:
        return Diagnostic("E0702", f"cannot write `{path}`: {(e.strerror or str(e)).lower()}")
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return None


# --- check, fmt, explain -------------------------------------------------------------------------


def cmd_check(args: argparse.Namespace, console: Console) -> int:
    from .render import render_json, summary_line

    everything: list[Diagnostic] = []
    seen: set[Diagnostic] = set()
    for path in args.files:
        _, found = _front_end(path, args.defines, console)
        # A module imported by several of the files is reported once.
        diags = [d for d in found if d not in seen]
        seen.update(diags)
        if args.format != "json":
            console.report(diags, fmt=args.format)
        everything.extend(diags)
    if args.format == "json":
        console.out.write(render_json(everything, console.sources))
    elif args.format == "human":
        n = len(args.files)
        console.err.write(f"checked {n} file{'s' if n != 1 else ''}: {summary_line(everything)}\n")
    return EXIT_ERROR if _has_errors(everything) else EXIT_OK


def cmd_fmt(args: argparse.Namespace, console: Console) -> int:
    from .format import format_source
    from .syntax.parser import decode_source

    failed = False
    changed = 0
    for path in args.files:
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as e:
            console.report(
                [Diagnostic("E0701", f"cannot read `{path}`: {(e.strerror or str(e)).lower()}")]
            )
            failed = True
            continue
        text, diags = decode_source(data, path)
        if text is None:
            console.report(diags)
            failed = True
            continue
        formatted, diags = format_source(text, path)
        console.report(diags, {path: text})
        if formatted is None or _has_errors(diags):
            failed = True  # never rewrite a file that does not parse
            continue
        if formatted == text:
            continue
        changed += 1
        if args.check:
            console.out.write(f"{path}\n")
            continue
        problem = write_file(path, formatted.encode("utf-8"))
        if problem is not None:
            console.report([problem])
            failed = True
        else:
            console.err.write(f"reformatted {path}\n")
    if failed or (args.check and changed):
        return EXIT_ERROR
    return EXIT_OK


def cmd_explain(args: argparse.Namespace, console: Console) -> int:
    from .codes import title
    from .explain import explanation, normalize_code, unknown_code_diagnostic

    code = normalize_code(args.code)
    if code is None:
        console.report([unknown_code_diagnostic(args.code)])
        return EXIT_ERROR
    text = (
        explanation(code) or f"# {code}: {title(code)}\n\nNo longer explanation is written yet.\n"
    )
    console.out.write(text if text.endswith("\n") else text + "\n")
    return EXIT_OK


# --- init, stats, graph --------------------------------------------------------------------------


def cmd_init(args: argparse.Namespace, console: Console) -> int:
    from .stats import human_bytes
    from .weights import WeightsError, write_npz, write_safetensors

    output = args.output or os.path.splitext(args.file)[0] + ".safetensors"
    ext = _extension(output, (".safetensors", ".npz"), "the weights file")
    graph = _load_model(args.file, args.defines, console)
    if graph is None:
        return EXIT_ERROR
    from .driver import init_weights

    with console.status(f"initialising {len(graph.params)} tensors"):
        weights = init_weights(graph, seed=args.seed, random=args.random)
    try:
        (write_safetensors if ext == ".safetensors" else write_npz)(output, weights)
    except WeightsError as e:
        console.report([e.to_diagnostic()])
        return EXIT_ERROR
    values = sum(int(a.size) for a in weights.values())
    nbytes = sum(int(a.nbytes) for a in weights.values())
    tensors = f"{len(weights)} tensor{'s' if len(weights) != 1 else ''}"
    console.out.write(
        f"wrote {values:,} parameters in {tensors} ({human_bytes(nbytes)}) to {output}\n"
    )
    return EXIT_OK


def cmd_stats(args: argparse.Namespace, console: Console) -> int:
    from .driver import native_memory
    from .stats import graph_stats, human_bytes, render_stats

    graph = _load_model(args.file, args.defines, console)
    if graph is None:
        return EXIT_ERROR
    console.out.write(render_stats(graph_stats(graph, batch=args.batch), depth=args.depth))
    plan = native_memory(graph)
    if plan is not None:
        env = dict.fromkeys(graph.symbols(), args.batch)
        _, peak = plan.layout(env)
        console.out.write(
            f"native temporaries: {human_bytes(peak)} in one arena of {len(plan.slots)} "
            f"slot{'' if len(plan.slots) == 1 else 's'} "
            f"(peak; {human_bytes(plan.unshared_bytes(env))} without reuse)\n"
            f"  arena bytes = {plan.formula()}\n"
        )
        if plan.per_thread:
            console.out.write(
                f"native scratch per thread: {human_bytes(plan.per_thread)} "
                "(convolution scratch, outside the arena)\n"
            )
    return EXIT_OK


def cmd_graph(args: argparse.Namespace, console: Console) -> int:
    from .graphviz import GraphvizError, render, to_dot

    ext = _extension(args.output, (".dot", ".svg"), "the picture") if args.output else None
    graph = _load_model(args.file, args.defines, console)
    if graph is None:
        return EXIT_ERROR
    text = to_dot(graph)
    if ext is None:
        console.out.write(text)
        return EXIT_OK
    data = text.encode("utf-8")
    if ext == ".svg":
        try:
            with console.status("running Graphviz"):
                data = render(text, "svg")
        except GraphvizError as e:
            console.report([Diagnostic("E0702", str(e))])
            return EXIT_ERROR
    problem = write_file(args.output, data)
    if problem is not None:
        console.report([problem])
        return EXIT_ERROR
    console.err.write(f"wrote {args.output}\n")
    return EXIT_OK


# --- run -------------------------------------------------------------------------------------


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    if args.output:
        _extension(args.output, (".npz",), "the outputs file")
    graph = _load_model(args.file, args.defines, console)
    if graph is None:
        return EXIT_ERROR
    inputs = _read_inputs(graph, args.inputs, console)
    if inputs is None:
        return EXIT_ERROR

    from .driver import load_weights, run_reference
    from .weights import WeightsError, write_npz

    try:
        with console.status(f"reading {args.weights}"):
            weights, diags = load_weights(graph, args.weights)
    except WeightsError as e:
        weights, diags = None, [e.to_diagnostic()]
    console.report(diags)
    if weights is None or _has_errors(diags):
        return EXIT_ERROR
    if args.backend == "native":  # MdlError (E0801, bad inputs) is reported by run_command
        from .driver import compile_native

        with console.status("compiling"):
            native = compile_native(graph, weights, fast_math=args.fast_math)
        outputs = native.run(inputs)
    else:
        with console.status("running the reference interpreter"):
            outputs = run_reference(graph, weights, inputs)

    width = max((len(name) for name in outputs), default=0)
    for name, array in outputs.items():
        console.out.write(f"{name:<{width}}  {summarize(array)}\n")
    if args.output:
        try:
            write_npz(args.output, outputs)
        except WeightsError as e:
            console.report([Diagnostic(e.code, e.message, notes=(f"writing `{args.output}`",))])
            return EXIT_ERROR
    return EXIT_OK


def _read_inputs(graph: Any, specs: Sequence[str], console: Console) -> dict[str, Any] | None:
    """`--input` values -> arrays by input name; None after reporting the problems."""
    declared = [inp.name for inp in graph.inputs]
    named: dict[str, str] = {}
    positional: list[str] = []
    diags: list[Diagnostic] = []
    for spec in specs:
        match = _INPUT_NAME.fullmatch(spec)
        # `NAME=file`, unless the whole text is an existing file whose name has a `=`.
        if match is None or (match.group(1) not in declared and os.path.exists(spec)):
            positional.append(spec)
            continue
        name, path = match.groups()
        if not path:
            raise UsageError(f"`--input {spec}` names no file")
        if name in named:
            raise UsageError(f"input `{name}` given twice")
        if name not in declared:
            diags.append(_unexpected_input(name, declared))
            continue
        named[name] = path
    free = [name for name in declared if name not in named]
    if len(positional) > len(free):
        listed = ", ".join(f"`{n}`" for n in declared) or "none"
        diags.append(
            Diagnostic(
                "E0602",
                f"too many inputs: {len(positional) + len(named)} given, "
                f"the model takes {len(declared)}",
                notes=(f"the model's inputs: {listed}",),
            )
        )
    paths = {**named, **dict(zip(free, positional, strict=False))}
    arrays: dict[str, Any] = {}
    for inp in graph.inputs:
        if inp.name not in paths:
            diags.append(
                Diagnostic(
                    "E0601",
                    f"missing input `{inp.name}`",
                    span=inp.span,
                    label=f"declared as {inp.value.type}",
                    help=f"pass it with `--input {inp.name}=FILE.npy`",
                )
            )
            continue
        array, problem = read_npy(paths[inp.name], inp.name)
        if problem is not None:
            diags.append(problem)
        else:
            arrays[inp.name] = array
    if diags:
        console.report(diags)
        return None
    return arrays


def _unexpected_input(name: str, declared: Sequence[str]) -> Diagnostic:
    import difflib

    close = difflib.get_close_matches(name, declared, n=1)
    listed = ", ".join(f"`{n}`" for n in declared) or "none"
    return Diagnostic(
        "E0602",
        f"unexpected input `{name}`",
        notes=(f"the model's inputs: {listed}",),
        help=f"did you mean `{close[0]}`?" if close else None,
    )


def read_npy(path: str, name: str) -> tuple[Any, Diagnostic | None]:
    """One input from a .npy file without ever unpickling: (array, None) or (None, why not)."""
    import numpy as np

    try:
        with open(path, "rb") as f:
            magic = f.read(6)
    except OSError as e:
        return None, Diagnostic(
            "E0701", f"cannot read `{path}` (input `{name}`): {(e.strerror or str(e)).lower()}"
        )
    save_hint = f"save a numeric array with `numpy.save('{path}', x)`"
    if magic.startswith(b"PK"):
        return None, Diagnostic(
            "E0608",
            f"input `{name}`: `{path}` is an .npz archive, not a single .npy array",
            help=save_hint,
        )
    if magic[:1] == b"\x80":
        return None, _pickled(path, name, save_hint)
    if magic != b"\x93NUMPY":
        return None, Diagnostic(
            "E0608", f"input `{name}`: `{path}` is not a .npy file", help=save_hint
        )
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as e:
        if "pickle" in str(e).lower():
            return None, _pickled(path, name, save_hint)
        return None, Diagnostic("E0608", f"input `{name}`: `{path}` is not a valid .npy file: {e}")
    except (OSError, EOFError) as e:
        return None, Diagnostic("E0608", f"input `{name}`: `{path}` is not a valid .npy file: {e}")
    return array, None


def _pickled(path: str, name: str, hint: str) -> Diagnostic:
    return Diagnostic(
        "E0608",
        f"input `{name}`: `{path}` holds pickled Python objects",
        notes=("pickled data can run code when loaded, so it is never read",),
        help=hint,
    )


def summarize(array: Any) -> str:
    """`f32[2, 10]  min -1.2  max 3.4  mean 0.56`: an output at a glance."""
    import numpy as np

    from .types import DType

    dtype = DType.from_numpy(array.dtype)
    kind = str(dtype) if dtype is not None else str(array.dtype)
    text = f"{kind}[{', '.join(str(n) for n in array.shape)}]"
    if array.size == 0:
        return text + "  (empty)"
    if array.dtype == np.bool_:
        return text + f"  true {int(np.count_nonzero(array)):,} of {array.size:,}"
    values = np.asarray(array, dtype=np.float64)
    finite = values[np.isfinite(values)]
    if finite.size:
        text += f"  min {finite.min():.6g}  max {finite.max():.6g}  mean {finite.mean():.6g}"
    bad = values.size - finite.size
    if bad:
        nan = int(np.count_nonzero(np.isnan(values)))
        text += f"  non-finite {bad:,} ({nan:,} nan)"
    return text


from .cli_build import cmd_build  # noqa: E402, F401  (the `build` command lives in its own module)
from .cli_onnx import cmd_export, cmd_import  # noqa: E402, F401  (ONNX import and export)
from .cli_verify import cmd_verify  # noqa: E402, F401  (the `verify` command lives in its own module)
