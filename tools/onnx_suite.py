"""The ONNX backend node suite through mdl: every case imported, run, compared -> coverage.

    python tools/onnx_suite.py [--sample N --seed S] [--ops Abs,Add] [--out docs/onnx-coverage.md]

Loads the node test cases of the installed onnx (`onnx.backend.test.loader.
load_model_tests(kind="node")`, generated in memory), and for each one: writes its model
to a scratch folder, imports it with `mdl.onnx_import.import_onnx(model, out_mdl)` (which
writes `out_mdl` and its `.safetensors` beside it), loads the result on each backend
("ref", "native") and compares the outputs with the case's expected ones at the suite's
tolerance (rtol 1e-3, atol 1e-7, NaN equal to NaN, dtypes equal). Each case ends, per
backend, as:

- passed: every output of every data set matches;
- unsupported: the import reports an error (an op, attribute or dtype mdl does not
  take), or the native backend cannot compile the model yet (E0801);
- failed: anything else (a mismatch, an error while loading or running, an exception).

Many cases pass a value that the op reads at compile time (Reshape's target shape,
Slice's bounds, a reduction's axes, ...) as a graph input, where a real model holds a
constant; mdl compiles shapes ahead of time, so it cannot take them at run time. For the
input slots listed in `COMPILE_TIME_SLOTS`, and only those, the runner bakes the case's
given value into an initializer before importing (once per data set when the values
differ) and feeds the model the remaining inputs. The report counts those cases.

The report (Markdown, `--out`) counts the outcomes per backend and per op, gives the
share of the cases whose tensors all have mdl dtypes (f16, bf16, f32, f64, i32, i64,
bool) that pass natively, and lists the failures. `--sample N --seed S` runs a fixed
random sample (CI); `--ops` only the cases of the named ops (importing only their case
modules, which is much faster than generating the whole suite). Exit status: 0, or 2 on
bad usage; failures are reported, not an exit status, since the suite measures coverage.
"""

from __future__ import annotations

import argparse
import importlib
import random
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
BACKENDS = ("ref", "native")
RTOL, ATOL = 1e-3, 1e-7
# onnx TensorProto element types that are mdl dtypes: f32, i32, i64, bool, f16, f64, bf16
MDL_ELEM_TYPES = frozenset({1, 6, 7, 9, 10, 11, 16})
PASSED, FAILED, UNSUPPORTED = "passed", "failed", "unsupported"

Importer = Callable[[str, str], Sequence[Any]]  # (model.onnx, out.mdl) -> diagnostics

# (op, input index) slots that an op reads as compile-time values: shapes, axes, bounds,
# counts, modes. A graph input read only at such slots is baked into an initializer (see
# the module docstring); an input any node reads as a run-time tensor is never baked.
_AXES = ("ReduceSum ReduceMean ReduceMax ReduceMin ReduceProd ReduceL1 ReduceL2 ReduceLogSum"
         " ReduceLogSumExp ReduceSumSquare Squeeze Unsqueeze").split()  # fmt: skip
COMPILE_TIME_SLOTS: frozenset[tuple[str, int]] = frozenset(
    [(op, 1) for op in _AXES]
    + [("Reshape", 1), ("Expand", 1), ("Tile", 1), ("Split", 1), ("Trilu", 1)]
    + [("Slice", i) for i in (1, 2, 3, 4)]
    + [("Pad", i) for i in (1, 2, 3)]
    + [("Range", i) for i in (0, 1, 2)]
    + [("ConstantOfShape", 0), ("CumSum", 1), ("OneHot", 1), ("CenterCropPad", 1)]
    + [("Resize", i) for i in (1, 2, 3)]
    + [("Dropout", 1), ("Dropout", 2)]
    # CastLike reads only its second input's element type, never its values
    + [("CastLike", 1)]
)


@dataclass(frozen=True)
class Outcome:
    status: str  # passed | failed | unsupported
    detail: str = ""


@dataclass(frozen=True)
class CaseResult:
    name: str
    op: str
    mdl_dtypes: bool  # every input and output tensor has a dtype mdl has
    outcomes: dict[str, Outcome] = field(default_factory=dict)
    baked: tuple[str, ...] = ()  # graph inputs baked into initializers (COMPILE_TIME_SLOTS)


# --- loading cases ----------------------------------------------------------------------------


def _op_names() -> dict[str, str]:
    """Lower-case op name without underscores -> the ONNX op name, for every default-domain op."""
    import onnx

    return {s.name.lower(): s.name for s in onnx.defs.get_all_schemas() if s.domain == ""}


def case_op(case: Any, ops: dict[str, str] | None = None) -> str:
    """The op a case tests: the longest ONNX op name its test name starts with (expanded
    function cases included), else its first node's op type."""
    ops = _op_names() if ops is None else ops
    key = case.name.removeprefix("test_").replace("_", "").lower()
    matches = [name for name in ops if key.startswith(name)]
    if matches:
        return ops[max(matches, key=len)]
    nodes = case.model.graph.node
    return nodes[0].op_type if nodes else "?"


def load_cases(ops: Iterable[str] | None = None) -> list[Any]:
    """The node cases; with `ops`, only those ops' (importing only their case modules)."""
    from onnx.backend.test.loader import load_model_tests

    # generating the cases computes expected outputs from edge values (log of 0, ...)
    with np.errstate(all="ignore"):
        if ops is None:
            return list(load_model_tests(kind="node"))
        import onnx.backend.test.case.node as node_cases

        wanted = set(ops)
        for op in wanted:
            try:
                importlib.import_module(f"{node_cases.__name__}.{op.lower()}")
            except ModuleNotFoundError:
                pass  # an op whose cases live in another op's module: use the full load
    names = _op_names()
    return [c for c in node_cases._NodeTestCases if case_op(c, names) in wanted]


def sample_cases(cases: Sequence[Any], n: int | None, seed: int) -> list[Any]:
    """A fixed sample of n cases (by name, independent of the load order), in name order."""
    ordered = sorted(cases, key=lambda c: c.name)
    if n is None or n >= len(ordered):
        return ordered
    picked = random.Random(seed).sample(range(len(ordered)), n)
    return [ordered[i] for i in sorted(picked)]


def has_mdl_dtypes(model: Any) -> bool:
    values = [*model.graph.input, *model.graph.output]
    return all(
        v.type.HasField("tensor_type") and v.type.tensor_type.elem_type in MDL_ELEM_TYPES
        for v in values
    )


# --- running ----------------------------------------------------------------------------------


def _default_importer() -> Importer:
    from mdl.onnx_import import import_onnx

    return import_onnx


def _arrays(values: Sequence[Any]) -> list[Any]:
    from onnx import numpy_helper

    # a case may hold a TensorProto or a numpy scalar where mdl takes an array
    return [np.asarray(numpy_helper.to_array(v) if hasattr(v, "data_type") else v) for v in values]


def _compare(got: np.ndarray, want: np.ndarray, rtol: float, atol: float) -> str | None:
    """None when equal at the suite's tolerance, else why not."""
    got, want = np.asarray(got), np.asarray(want)
    if got.dtype != want.dtype:
        return f"dtype {got.dtype}, expected {want.dtype}"
    if got.shape != want.shape:
        return f"shape {got.shape}, expected {want.shape}"
    if want.dtype.kind in "biuSUO":
        bad = int(np.count_nonzero(got != want))
        return f"{bad} of {want.size} elements differ" if bad else None
    try:
        np.testing.assert_allclose(
            got.astype(np.float64), want.astype(np.float64), rtol=rtol, atol=atol
        )
    except AssertionError as e:
        lines = [line.strip() for line in str(e).splitlines() if line.strip()]
        return "; ".join(lines[1:4])
    return None


def _one_line(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _error_text(e: BaseException) -> str:
    from mdl.diagnostics import MdlError

    if isinstance(e, MdlError):
        return str(e.diagnostics[0]) if e.diagnostics else str(e)
    return f"{type(e).__name__}: {traceback.format_exception_only(e)[-1].strip()}"


def _run_backend(
    onnx_model: Any, data_sets: Sequence[Any], case: Any, out_mdl: Path, backend: str
) -> Outcome:
    import mdl
    from mdl.diagnostics import MdlError

    weights_path = out_mdl.with_suffix(".safetensors")
    weights = str(weights_path) if weights_path.exists() else None
    try:
        model = mdl.load(str(out_mdl), weights, backend=backend, cache=False)
    except MdlError as e:
        if any(d.code == "E0801" for d in e.diagnostics if d.is_error):
            return Outcome(UNSUPPORTED, _one_line(_error_text(e)))
        return Outcome(FAILED, _one_line("load: " + _error_text(e)))
    except Exception as e:  # a crash of the compiler is a failure, not the runner's
        return Outcome(FAILED, _one_line("load: " + _error_text(e)))
    graph = onnx_model.graph
    # by name; by position where the import had to rename (an ONNX name such as `sum` or
    # `x.1` is no mdl identifier), the order being kept
    in_names = _matched([v.name for v in graph.input], model.input_names)
    out_names = _matched([v.name for v in graph.output], model.output_names)
    if in_names is None or out_names is None:
        return Outcome(
            FAILED,
            _one_line(
                f"inputs ({', '.join(model.input_names)}) or outputs "
                f"({', '.join(model.output_names)}) do not match the ONNX model's"
            ),
        )
    for index, (inputs, outputs) in enumerate(data_sets):
        feed = dict(zip(in_names, _arrays(inputs), strict=True))
        try:
            with np.errstate(all="ignore"):
                got = model.run(feed)
        except Exception as e:
            return Outcome(FAILED, _one_line(f"run (data set {index}): " + _error_text(e)))
        for name, want in zip(out_names, _arrays(outputs), strict=True):
            why = _compare(got[name], want, case.rtol or RTOL, case.atol or ATOL)
            if why is not None:
                return Outcome(FAILED, _one_line(f"output `{name}`: {why}"))
    return Outcome(PASSED)


def _matched(onnx_names: list[str], mdl_names: list[str]) -> list[str] | None:
    """The mdl names for the ONNX names, in the ONNX order; None when they cannot match."""
    if sorted(onnx_names) == sorted(mdl_names):
        return onnx_names
    return list(mdl_names) if len(mdl_names) == len(onnx_names) else None


def baked_inputs(model: Any) -> list[int]:
    """Positions of the graph inputs that nodes read only at compile-time slots (an input
    also read as a run-time tensor, such as CastLike's `like` that is the data, stays)."""
    slot_reads: set[str] = set()
    tensor_reads: set[str] = set()
    for node in model.graph.node:
        for i, name in enumerate(node.input):
            if not name:
                continue
            compile_time = (
                node.domain in ("", "ai.onnx") and (node.op_type, i) in COMPILE_TIME_SLOTS
            )
            (slot_reads if compile_time else tensor_reads).add(name)
    tensor_reads |= {v.name for v in model.graph.output}
    wanted = slot_reads - tensor_reads
    return [i for i, v in enumerate(model.graph.input) if v.name in wanted]


def bake(model: Any, positions: Sequence[int], values: Sequence[np.ndarray]) -> Any:
    """A copy of `model` whose inputs at `positions` are initializers holding `values`."""
    from onnx import numpy_helper

    baked = type(model)()
    baked.CopyFrom(model)
    graph = baked.graph
    for pos, value in zip(positions, values, strict=True):
        spec = model.graph.input[pos]
        tensor = numpy_helper.from_array(np.asarray(value), spec.name)
        graph.initializer.append(tensor)
    keep = [v for i, v in enumerate(model.graph.input) if i not in set(positions)]
    del graph.input[:]
    graph.input.extend(keep)
    return baked


def run_case(
    case: Any, importer: Importer, workdir: Path, backends: Sequence[str] = BACKENDS
) -> CaseResult:
    op = case_op(case)
    positions = baked_inputs(case.model)
    names = tuple(case.model.graph.input[i].name for i in positions)
    result = CaseResult(case.name, op, has_mdl_dtypes(case.model), baked=names)
    if not positions:
        _run_model(case, case.model, case.data_sets, importer, workdir, backends, result)
        return result
    # one import per distinct set of baked values (node cases almost always have one)
    groups: dict[bytes, tuple[list[np.ndarray], list[Any]]] = {}
    for inputs, outputs in case.data_sets:
        arrays = _arrays(inputs)
        values = [arrays[i] for i in positions]
        key = b"".join(v.dtype.str.encode() + repr(v.shape).encode() + v.tobytes() for v in values)
        rest = [a for i, a in enumerate(arrays) if i not in set(positions)]
        groups.setdefault(key, (values, []))[1].append((rest, outputs))
    for k, (values, data_sets) in enumerate(groups.values()):
        folder = workdir / f"baked{k}"
        folder.mkdir()
        model = bake(case.model, positions, values)
        part = CaseResult(case.name, op, result.mdl_dtypes)
        _run_model(case, model, data_sets, importer, folder, backends, part)
        for backend, outcome in part.outcomes.items():
            if result.outcomes.get(backend, Outcome(PASSED)).status == PASSED:
                result.outcomes[backend] = outcome
    return result


def _run_model(case: Any, model: Any, data_sets: Sequence[Any], importer: Importer,
               workdir: Path, backends: Sequence[str], result: CaseResult) -> None:  # fmt: skip
    """Import `model` and run `data_sets` on each backend, recording into `result`."""
    model_path = workdir / f"{case.name}.onnx"
    out_mdl = workdir / f"{case.name}.mdl"
    model_path.write_bytes(model.SerializeToString())

    def everywhere(outcome: Outcome) -> None:
        result.outcomes.update({b: outcome for b in backends})

    try:
        diags = list(importer(str(model_path), str(out_mdl)))
    except Exception as e:
        return everywhere(Outcome(FAILED, _one_line("import raised " + _error_text(e))))
    errors = [d for d in diags if getattr(d, "is_error", True)]
    if errors:
        return everywhere(Outcome(UNSUPPORTED, _one_line(str(errors[0]))))
    if not out_mdl.exists():
        return everywhere(Outcome(FAILED, "the import reported no error but wrote no .mdl"))
    for backend in backends:
        result.outcomes[backend] = _run_backend(model, data_sets, case, out_mdl, backend)
    return None


def run_suite(
    cases: Sequence[Any],
    importer: Importer | None = None,
    backends: Sequence[str] = BACKENDS,
    progress: Callable[[int, int, CaseResult], None] | None = None,
) -> list[CaseResult]:
    importer = importer or _default_importer()
    results = []
    with tempfile.TemporaryDirectory(prefix="mdl-onnx-suite-") as tmp:
        for i, case in enumerate(cases):
            folder = Path(tmp) / f"{i:05d}"
            folder.mkdir()
            result = run_case(case, importer, folder, backends)
            results.append(result)
            if progress is not None:
                progress(i + 1, len(cases), result)
    return results


# --- the report -------------------------------------------------------------------------------


def _counts(results: Iterable[CaseResult], backend: str) -> Counter[str]:
    return Counter(r.outcomes[backend].status for r in results if backend in r.outcomes)


def report(
    results: Sequence[CaseResult], backends: Sequence[str] = BACKENDS, command: str = ""
) -> str:
    import onnx

    lines = [
        "# ONNX backend node suite",
        "",
        f"Generated by `{command or 'python tools/onnx_suite.py'}` with onnx {onnx.__version__}:"
        f" {len(results)} cases of the node suite, each imported with `mdlc import`, run on"
        f" the {' and '.join(f'`{b}`' for b in backends)} backends and compared with the"
        f" expected outputs at rtol {RTOL:g}, atol {ATOL:g}.",
        "A case is *unsupported* when the import reports an error or the native backend"
        " cannot compile it yet (E0801), *failed* when it runs but disagrees or errors.",
        "",
        "| backend | passed | failed | unsupported |",
        "| --- | ---: | ---: | ---: |",
    ]
    for backend in backends:
        c = _counts(results, backend)
        lines.append(f"| {backend} | {c[PASSED]} | {c[FAILED]} | {c[UNSUPPORTED]} |")
    typed = [r for r in results if r.mdl_dtypes]
    if "native" in backends:
        passing = sum(r.outcomes.get("native", Outcome("")).status == PASSED for r in typed)
        share = f"{100 * passing / len(typed):.1f}%" if typed else "n/a"
        lines += [
            "",
            f"Cases whose input and output tensors all have mdl dtypes: {len(typed)};"
            f" passing on the native backend: {passing} ({share}).",
        ]
    baked = [r for r in results if r.baked]
    if baked:
        per_op = Counter(r.op for r in baked)
        slots: dict[str, list[int]] = {}
        for op_name, index in sorted(COMPILE_TIME_SLOTS):
            slots.setdefault(op_name, []).append(index)
        slot_text = "; ".join(f"{o} {', '.join(map(str, i))}" for o, i in slots.items())
        lines += [
            "",
            f"Inputs baked into initializers: {len(baked)} cases"
            f" ({', '.join(f'{o} {k}' for o, k in sorted(per_op.items()))}). These cases pass"
            " a value the op reads at compile time (a target shape, axes, slice bounds, pads,"
            " counts; CastLike's second input, read only for its element type) as a graph"
            " input; mdl compiles shapes ahead of time and cannot take such a value at run"
            " time, so the runner makes the given value an initializer, as an exported model"
            " has it, and feeds the other inputs. Only these (op, input index) slots are"
            f" baked: {slot_text}.",
        ]
    lines += ["", "## Per op", ""]
    head = " | ".join(f"{b} pass | {b} fail | {b} unsup." for b in backends)
    lines += [f"| op | cases | {head} |", "| --- | ---: |" + " ---: |" * (3 * len(backends))]
    by_op: dict[str, list[CaseResult]] = {}
    for r in results:
        by_op.setdefault(r.op, []).append(r)
    for op in sorted(by_op):
        cells = []
        for backend in backends:
            c = _counts(by_op[op], backend)
            cells += [str(c[PASSED]), str(c[FAILED]), str(c[UNSUPPORTED])]
        lines.append(f"| {op} | {len(by_op[op])} | {' | '.join(cells)} |")
    failures = [
        (r.name, b, o.detail) for r in results for b, o in r.outcomes.items() if o.status == FAILED
    ]
    if failures:
        lines += ["", "## Failures", "", "| case | backend | why |", "| --- | --- | --- |"]
        for name, backend, detail in failures:
            lines.append(f"| {name} | {backend} | {_escape(detail)} |")
    return "\n".join(lines) + "\n"


def _escape(text: str) -> str:
    return re.sub(r"([|`])", r"\\\1", text)


# --- command line -----------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None, importer: Importer | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="onnx_suite.py", description=__doc__.split("\n\n")[0] if __doc__ else None
    )
    parser.add_argument("--sample", type=int, default=None, help="run N cases drawn at random")
    parser.add_argument("--seed", type=int, default=0, help="the sample's seed (default 0)")
    parser.add_argument("--ops", default=None, help="only these ops, comma-separated")
    parser.add_argument("--backends", default=",".join(BACKENDS), help="default: ref,native")
    parser.add_argument(
        "--out", default=str(ROOT / "docs" / "onnx-coverage.md"), help="the Markdown report"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress lines")
    args = parser.parse_args(argv)
    backends = tuple(b for b in args.backends.split(",") if b)
    if not backends or any(b not in BACKENDS for b in backends):
        parser.error(f"--backends takes {' and/or '.join(BACKENDS)}")
    if args.sample is not None and args.sample < 1:
        parser.error("--sample takes a positive number")
    ops = [o.strip() for o in args.ops.split(",") if o.strip()] if args.ops else None
    cases = sample_cases(load_cases(ops), args.sample, args.seed)
    start = time.monotonic()

    def progress(done: int, total: int, result: CaseResult) -> None:
        if not args.quiet:
            marks = " ".join(f"{b}={o.status}" for b, o in result.outcomes.items())
            print(f"[{done}/{total}] {result.name}: {marks}", file=sys.stderr)

    results = run_suite(cases, importer, backends, progress)
    command = "python tools/onnx_suite.py"
    if args.sample is not None:
        command += f" --sample {args.sample} --seed {args.seed}"
    if ops:
        command += f" --ops {','.join(ops)}"
    if backends != BACKENDS:
        command += f" --backends {','.join(backends)}"
    text = report(results, backends, command)
    try:
        Path(args.out).write_text(text)
    except OSError as e:
        print(f"error: cannot write {args.out}: {e.strerror or e}", file=sys.stderr)
        return 2
    for backend in backends:
        c = _counts(results, backend)
        print(
            f"{backend}: {c[PASSED]} passed, {c[FAILED]} failed, {c[UNSUPPORTED]} unsupported"
            f" of {len(results)} ({time.monotonic() - start:.0f} s); report: {args.out}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
