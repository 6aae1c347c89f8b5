"""SGEMM speed: mdl native `a @ b` against numpy's OpenBLAS on one thread, N = 512 and 1024
-> bench/results/gemm.md (median ms, GFLOP/s, mdl/OpenBLAS ratio, the BLAS kernel used);
then mdl's GEMM kernel alone (backend/gemm.py, JIT-compiled for run-time sizes and called
through ctypes) against OpenBLAS on the shapes models make: Dense layers at batch 1 and
64, convolutions as im2col products, odd sizes, a large square.

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
# (m, n, k, where such a product comes from)
KERNEL_SHAPES = [
    (1, 512, 784, "Dense 784 -> 512, batch 1"),
    (64, 512, 784, "Dense 784 -> 512, batch 64"),
    (1024, 16, 27, "conv 3x3, 3 -> 16 channels, 32x32 (im2col)"),
    (64, 32, 144, "conv 3x3, 16 -> 32 channels, 8x8 (im2col)"),
    (7, 13, 65, "odd sizes"),
    (2048, 2048, 2048, "square"),
]
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


def shaped_operands(m: int, n: int, k: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(m * n + k)
    return (
        rng.standard_normal((m, k), dtype=np.float32),
        rng.standard_normal((k, n), dtype=np.float32),
    )


def repeats(m: int, n: int, k: int) -> int:
    """Products per timed call: about 10 MFLOP, so that small ones outlast the clock's
    and the call's overheads."""
    return max(1, 10_000_000 // (2 * m * n * k))


def numpy_worker() -> None:
    """In the subprocess: answer `info` with the BLAS libraries (threadpoolctl), `N` with
    the time of one `a @ b` of that size and `m n k` with the mean time of `repeats`
    products of that shape, one JSON line each, until stdin closes."""
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
    shaped = {(m, n, k): shaped_operands(m, n, k) for m, n, k, _ in KERNEL_SHAPES}
    for line in sys.stdin:
        if line.strip() == "info":
            print(json.dumps(info), flush=True)
            continue
        sizes = tuple(map(int, line.split()))
        if len(sizes) == 1:
            a, b = pairs[sizes[0]]
            t = time.perf_counter()
            a @ b
            print(json.dumps(time.perf_counter() - t), flush=True)
            continue
        a, b = shaped[sizes]
        reps = repeats(*sizes)
        t = time.perf_counter()
        for _ in range(reps):
            a @ b
        print(json.dumps((time.perf_counter() - t) / reps), flush=True)


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


def compile_kernel() -> tuple[Any, Any]:
    """mdl's f32 GEMM kernel for this CPU alone, exported: (engine, ctypes function)."""
    import ctypes

    import llvmlite.ir as ll

    from mdl.backend.gemm import define_gemm
    from mdl.backend.jit import _llvm, host_target_machine, host_vector_width, optimize

    module = ll.Module()
    fn = define_gemm(module, ll.FloatType(), host_vector_width())
    fn.linkage = "external"
    tm = host_target_machine()
    engine = _llvm().create_mcjit_compiler(optimize(str(module), tm), tm)
    engine.finalize_object()
    args = [ctypes.c_void_p] * 3 + [ctypes.c_int64] * 6
    return engine, ctypes.CFUNCTYPE(None, *args)(engine.get_function_address(fn.name))


def run_kernels(workers: dict[str, NumpyWorker]) -> dict[tuple[int, int, int], dict[str, Timing]]:
    """Per shape: the kernel (mean of `repeats` calls) and OpenBLAS in interleaved rounds."""
    engine, kernel = compile_kernel()  # noqa: F841 -- the engine owns the code
    found = {}
    for m, n, k, _ in KERNEL_SHAPES:
        a, b = shaped_operands(m, n, k)
        c = np.empty((m, n), np.float32)
        args = (a.ctypes.data, b.ctypes.data, c.ctypes.data, m, n, k, k, n, n)
        kernel(*args)
        want = a.astype(np.float64) @ b.astype(np.float64)
        if np.max(np.abs(c - want)) > 1e-5 * max(1.0, float(np.max(np.abs(want)))):
            raise SystemExit(f"mdl GEMM kernel {m}x{n}x{k} differs from float64 numpy")
        reps = repeats(m, n, k)

        def run(reps: int = reps, args: tuple = args) -> float:
            t = time.perf_counter()
            for _ in range(reps):
                kernel(*args)
            return (time.perf_counter() - t) / reps

        plans = {"mdl": Plan(run, budget=2.0, min_runs=5)}
        plans[BEST] = Plan(lambda s=f"{m} {n} {k}": workers[BEST].ask(s), budget=2.0, min_runs=5)
        found[(m, n, k)] = measure_own_clock(plans, own_clock=set(plans))
        t = found[(m, n, k)]
        print(
            f"  {m}x{n}x{k} mdl kernel: {t['mdl'].median * 1e6:.1f} us, "
            f"OpenBLAS: {t[BEST].median * 1e6:.1f} us",
            flush=True,
        )
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


def report(
    found: dict[int, dict[str, Any]],
    kernels: dict[str, str],
    shaped: dict[tuple[int, int, int], dict[str, Timing]],
) -> str:
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
    out += [
        "",
        "## The GEMM kernel alone",
        "",
        "mdl's f32 GEMM function (`mdl_gemm_f32_w*`, what `a @ b` and im2col convolutions "
        "call) compiled on its own, so the sizes are run-time values as in a model with "
        "symbolic dimensions, and called through ctypes on C-contiguous operands; OpenBLAS "
        "as above (`a @ b`, one thread). Each timed call repeats the product to about "
        "10 MFLOP and gives the mean; medians of those, in interleaved rounds. Both sides "
        "include their call overhead (ctypes, numpy's dispatch: about a microsecond).",
        "",
        "| m x k @ k x n | from | mdl kernel (µs) | GFLOP/s | OpenBLAS (µs) | GFLOP/s | "
        "mdl/OpenBLAS speed |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for m, n, k, where in KERNEL_SHAPES:
        mine, blas = shaped[(m, n, k)]["mdl"].median, shaped[(m, n, k)][BEST].median
        flop = 2.0 * m * n * k
        out.append(
            f"| {m} x {k} @ {k} x {n} | {where} | {mine * 1e6:.1f} | {flop / mine / 1e9:.1f} | "
            f"{blas * 1e6:.1f} | {flop / blas / 1e9:.1f} | {blas / mine:.2f}x |"
        )
    return "\n".join(out) + "\n"


def kernel_names(info: list[dict[str, Any]]) -> str:
    names = [f"{b['internal_api']} {b['version']} {b['architecture']}" for b in info]
    return ", ".join(names) or "unknown (threadpoolctl not installed)"


def main() -> None:
    os.environ["MDL_NUM_THREADS"] = "1"  # one thread on both sides (mdl's default: every core)
    workers = {BEST: NumpyWorker(unpin=True)}
    if any(k in os.environ for k in PINNED):
        workers[PINNED_RUN] = NumpyWorker(unpin=False)
    try:
        kernels = {name: kernel_names(w.ask("info")) for name, w in workers.items()}
        with tempfile.TemporaryDirectory() as tmp:
            warm_up_compiler(Path(tmp))
            found = run_all(Path(tmp), workers)
        shaped = run_kernels(workers)
    finally:
        for w in workers.values():
            w.close()
    text = report(found, kernels, shaped)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gemm.md").write_text(text)


if __name__ == "__main__":
    if sys.argv[1:] == ["--numpy-worker"]:
        numpy_worker()
    else:
        main()
