"""`mdlc verify`: the native backend against the reference interpreter on seeded random inputs.

Index inputs (`ids: i64[B, T] in 0..V`) are drawn from their declared ranges;
symbolic dims get `--batch` (default 2). Floats must agree within
`|native - ref| <= atol + rtol * |ref|` (defaults rtol 1e-4, atol 1e-5, as the
native tests); ints and bools exactly; NaN and inf where the reference has them.
"""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from .cli import EXIT_ERROR, EXIT_OK, Console
from .diagnostics import Diagnostic, MdlError


def random_inputs(graph: Any, seed: int, batch: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    env = {s: batch for s in graph.symbols()}
    out: dict[str, np.ndarray] = {}
    for inp in graph.inputs:
        t = inp.value.type
        shape = tuple(d.evaluate(env) for d in t.shape)
        for d, n in zip(t.shape, shape, strict=True):  # dims like `T` bound by an earlier input
            if d.is_symbol:
                env.setdefault(d.name, n)
        if inp.index_range is not None:
            lo, hi = (int(b.evaluate(env)) for b in inp.index_range)
            arr = rng.integers(lo, hi, size=shape)
        elif t.dtype.is_int:
            arr = rng.integers(-3, 4, size=shape)
        elif t.dtype.name == "BOOL":
            arr = rng.random(shape) < 0.5
        else:
            arr = rng.standard_normal(shape)
        out[inp.name] = np.asarray(arr).astype(t.dtype.numpy)
    return out


def compare(
    native: np.ndarray, ref: np.ndarray, rtol: float, atol: float
) -> tuple[float, float, bool]:
    """(max abs error, max relative error, within tolerance)."""
    if native.shape != ref.shape or native.dtype != ref.dtype:
        return float("inf"), float("inf"), False
    if ref.dtype.kind in "biu":
        diff = np.abs(native.astype(np.int64) - ref.astype(np.int64)) if ref.size else np.zeros(1)
        worst = float(diff.max()) if diff.size else 0.0
        return worst, worst, worst == 0
    n, r = native.astype(np.float64), ref.astype(np.float64)
    with np.errstate(invalid="ignore"):  # inf - inf where both are inf: compared separately
        return _compare_floats(n, r, rtol, atol)


def _compare_floats(
    n: np.ndarray, r: np.ndarray, rtol: float, atol: float
) -> tuple[float, float, bool]:
    same_special = np.array_equal(np.isnan(n), np.isnan(r)) and np.array_equal(
        np.where(np.isinf(r), r, 0), np.where(np.isinf(n), n, 0)
    )
    finite = np.isfinite(r) & np.isfinite(n)
    err = np.abs(n - r)[finite]
    rel = err / np.maximum(np.abs(r[finite]), np.finfo(np.float64).tiny)
    ok = same_special and bool(np.all(err <= atol + rtol * np.abs(r[finite])))
    return (float(err.max()) if err.size else 0.0), (float(rel.max()) if rel.size else 0.0), ok


def cmd_verify(args: argparse.Namespace, console: Console) -> int:
    from .cli_commands import _has_errors, _load_model
    from .driver import compile_native, load_weights, run_reference
    from .weights import WeightsError

    graph = _load_model(args.file, args.defines, console)
    if graph is None:
        return EXIT_ERROR
    try:
        weights, diags = load_weights(graph, args.weights)
    except WeightsError as e:
        weights, diags = None, [e.to_diagnostic()]
    console.report(diags)
    if weights is None or _has_errors(diags):
        return EXIT_ERROR
    try:
        with console.status("compiling"):
            native = compile_native(
                graph, weights, fast_math=bool(getattr(args, "fast_math", False))
            )
        inputs = random_inputs(graph, args.seed, args.batch)
        with console.status("running both backends"):
            want = run_reference(graph, weights, inputs)
            got = native.run(inputs)
    except MdlError as e:
        console.report(list(e.diagnostics))
        return EXIT_ERROR
    width = max(len(n) for n in want)
    console.out.write(f"{'output':<{width}}  {'max abs err':>12}  {'max rel err':>12}  result\n")
    failed = []
    for name in want:
        abs_err, rel_err, ok = compare(got[name], want[name], args.rtol, args.atol)
        console.out.write(
            f"{name:<{width}}  {abs_err:12.3e}  {rel_err:12.3e}  {'ok' if ok else 'FAIL'}\n"
        )
        if not ok:
            failed.append(name)
    if failed:
        console.report(
            [
                Diagnostic(
                    "E0802",
                    f"native output{'s' if len(failed) > 1 else ''} "
                    f"{', '.join(f'`{n}`' for n in failed)} differ from the reference beyond "
                    f"rtol {args.rtol:g} / atol {args.atol:g}",
                    notes=(f"inputs: seed {args.seed}, symbolic dims = {args.batch}",),
                    help="please report this with the model: the native backend must match the reference",
                )
            ]
        )
        return EXIT_ERROR
    return EXIT_OK
