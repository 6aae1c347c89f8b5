"""SGEMM speed: mdl native `a @ b` against numpy's OpenBLAS on one thread, N = 512 and 1024
-> bench/results/gemm.md (median ms, GFLOP/s, mdl/OpenBLAS ratio, the BLAS kernel used).

The numpy side runs in a subprocess whose environment has OPENBLAS_CORETYPE and
OPENBLAS_L2_SIZE removed, so that OpenBLAS picks its best kernel for this CPU (some
machines set them to dodge bugs of old OpenBLAS builds; a current numpy runs slower
with them). threadpoolctl limits BLAS to one thread and names the kernel; without
threadpoolctl, OPENBLAS_NUM_THREADS=1 does the limiting. When the machine sets those
variables, numpy is also timed with them, for comparison.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from models import (  # noqa: E402
    RESULTS,
    Plan,
    Timing,
    machine_header,
    measure,
    warm_up_compiler,
)

SIZES = (512, 1024)
PINNED = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
SOURCE = "model Gemm[N = 512](a: f32[N, N], b: f32[N, N]) -> f32[N, N] { return a @ b }\n"


def operands(n: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(n)
    return (
        rng.standard_normal((n, n), dtype=np.float32),
        rng.standard_normal((n, n), dtype=np.float32),
    )


def gflops(n: int, seconds: float) -> float:
    return 2.0 * n**3 / seconds / 1e9


def numpy_worker() -> None:
    """In the subprocess: answer `info` with the BLAS libraries (threadpoolctl) and `N` with
    the time of one `a @ b` of that size, one JSON line each, until stdin closes."""
    try:
        from threadpoolctl import threadpool_info, threadpool_limits

        limit = threadpool_limits(1, user_api="blas")  # noqa: F841 -- held for the whole run
        info = [
            {k: d.get(k) for k in ("internal_api", "version", "architecture", "num_threads")}
            for d in threadpool_info()
            if d.get("user_api") == "blas"
        ]
    except ImportError:
        info = []
    pairs = {n: operands(n) for n in SIZES}
    for line in sys.stdin:
        if line.strip() == "info":
            print(json.dumps(info), flush=True)
            continue
        a, b = pairs[int(line)]
        t = time.perf_counter()
        a @ b
        print(json.dumps(time.perf_counter() - t), flush=True)


class NumpyWorker:
    """A numpy subprocess that times one SGEMM per request, optionally without the
    machine's OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE."""

    def __init__(self, unpin: bool):
        env = dict(os.environ)
        if unpin:
            for k in PINNED:
                env.pop(k, None)
        try:
            import threadpoolctl  # noqa: F401
        except ImportError:
            env["OPENBLAS_NUM_THREADS"] = "1"
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--numpy-worker"],
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )

    def ask(self, request: str) -> Any:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(request + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()


def compile_mdl(folder: Path, n: int) -> tuple[Any, float]:
    import mdl

    source = folder / "gemm.mdl"
    source.write_text(SOURCE)
    t = time.perf_counter()
    model = mdl.load(str(source), backend="native", defines={"N": n}, cache=False)
    compile_s = time.perf_counter() - t
    a, b = operands(n)
    want = a.astype(np.float64) @ b.astype(np.float64)
    rel = float(np.max(np.abs(model(a, b) - want)) / np.max(np.abs(want)))
    if rel > 1e-5:
        raise SystemExit(f"mdl SGEMM {n} differs from float64 numpy: max rel error {rel:.1e}")
    return model, compile_s


def run_all(folder: Path, workers: dict[str, NumpyWorker]) -> dict[int, dict[str, Any]]:
    """Per size: mdl and every numpy worker timed in interleaved rounds (see models.measure)."""
    found: dict[int, dict[str, Any]] = {}
    for n in SIZES:
        model, compile_s = compile_mdl(folder, n)
        a, b = operands(n)
        plans = {"mdl": Plan(lambda a=a, b=b, model=model: model(a, b), budget=3.0, min_runs=5)}
        for name, worker in workers.items():
            # the worker's own clock: the pipe round trip stays out of the time
            plans[name] = Plan(lambda w=worker, n=n: w.ask(str(n)), budget=3.0, min_runs=5)
        timings = measure_own_clock(plans, own_clock=set(workers))
        found[n] = {"compile": compile_s, **timings}
        for name, t in timings.items():
            print(f"  {n} {name}: {t.median * 1e3:.2f} ms ({t.runs} runs)", flush=True)
    return found


def measure_own_clock(plans: dict[str, Plan], own_clock: set[str]) -> dict[str, Timing]:
    """`measure`, except that the runners in `own_clock` return their own time in seconds
    (a subprocess's clock) instead of being timed from here."""
    reported: dict[str, list[float]] = {name: [] for name in own_clock}

    def wrap(name: str, plan: Plan) -> Plan:
        def call() -> None:
            reported[name].append(plan.call())

        return Plan(call, plan.budget, plan.min_runs, plan.max_runs)

    timed = measure({k: wrap(k, p) if k in own_clock else p for k, p in plans.items()})
    for name in own_clock:
        got = reported[name][-timed[name].runs :]  # the timed calls, after the warm-up
        timed[name] = Timing(statistics.median(got), len(got))
    return timed


BEST, PINNED_RUN = "OpenBLAS", "OpenBLAS as pinned here"


def report(found: dict[int, dict[str, Any]], kernels: dict[str, str]) -> str:
    pinned_env = ", ".join(f"{k}={os.environ[k]}" for k in PINNED if k in os.environ)
    out = ["# SGEMM speed", "", *machine_header("python bench/gemm.py"), ""]
    out += [
        "C = A @ B for square f32 matrices, one thread. mdl native: "
        f"`{SOURCE.strip()}` with N given at compile time, called through `Model.__call__` "
        "(output allocation included; checked against a float64 product first). numpy: "
        "`a @ b` on OpenBLAS limited to one thread, in a subprocess with OPENBLAS_CORETYPE and "
        "OPENBLAS_L2_SIZE removed from its environment; BLAS kernel (threadpoolctl): "
        f"**{kernels[BEST]}**. Both are timed in interleaved rounds; medians; "
        "GFLOP/s = 2 N³ / time; speed ratio = OpenBLAS time / mdl time (above 1: mdl faster).",
        "",
        "| N | mdl native (ms) | mdl GFLOP/s | OpenBLAS (ms) | OpenBLAS GFLOP/s | "
        "mdl/OpenBLAS speed | target | runs (mdl/OpenBLAS) | mdl compile (s) |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    for n in SIZES:
        m, blas = found[n]["mdl"], found[n][BEST]
        out.append(
            f"| {n} | {m.median * 1e3:.2f} | {gflops(n, m.median):.1f} | "
            f"{blas.median * 1e3:.2f} | {gflops(n, blas.median):.1f} | "
            f"{blas.median / m.median:.2f}x | ≥ 0.9x | {m.runs}/{blas.runs} | "
            f"{found[n]['compile']:.2f} |"
        )
    if PINNED_RUN in kernels:
        out += [
            "",
            f"For comparison, numpy in the same rounds with this machine's {pinned_env} left in "
            f"place (kernel: {kernels[PINNED_RUN]}):",
            "",
            "| N | OpenBLAS (ms) | OpenBLAS GFLOP/s |",
            "| ---: | ---: | ---: |",
        ]
        for n in SIZES:
            t = found[n][PINNED_RUN]
            out.append(f"| {n} | {t.median * 1e3:.2f} | {gflops(n, t.median):.1f} |")
    return "\n".join(out) + "\n"


def kernel_names(info: list[dict[str, Any]]) -> str:
    names = [f"{b['internal_api']} {b['version']} {b['architecture']}" for b in info]
    return ", ".join(names) or "unknown (threadpoolctl not installed)"


def main() -> None:
    workers = {BEST: NumpyWorker(unpin=True)}
    if any(k in os.environ for k in PINNED):
        workers[PINNED_RUN] = NumpyWorker(unpin=False)
    try:
        kernels = {name: kernel_names(w.ask("info")) for name, w in workers.items()}
        with tempfile.TemporaryDirectory() as tmp:
            warm_up_compiler(Path(tmp))
            found = run_all(Path(tmp), workers)
    finally:
        for w in workers.values():
            w.close()
    text = report(found, kernels)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gemm.md").write_text(text)


if __name__ == "__main__":
    if sys.argv[1:] == ["--numpy-worker"]:
        numpy_worker()
    else:
        main()
