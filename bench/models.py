"""Model speed: the four example models on mdl native, the reference interpreter, PyTorch and
onnxruntime -> bench/results/models.md (medians, mdl/peer ratios, compile times, call overhead).

Every runner gets the same weights (`init_weights(seed=0, random=True)`, loaded into the
peers by PyTorch state-dict name) and the same seeded inputs; each peer's outputs are
checked against mdl native before it is timed. Each case runs at 1 and 2 threads
(`--threads`), every runner held to the same count (mdl.load(threads=n),
torch.set_num_threads, onnxruntime intra-op threads, BLAS under the reference interpreter
via threadpoolctl). Times are wall-clock medians of
whole calls from Python (input checks and output allocation included, as a user sees them).
"""

from __future__ import annotations

import argparse
import ctypes
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"

# name -> (file, {batch: input shape}); GPT takes i64 token ids
MODELS: dict[str, tuple[str, dict[int, tuple[int, ...]]]] = {
    "mlp": ("examples/mlp.mdl", {1: (1, 784), 64: (64, 784)}),
    "lenet": ("examples/lenet.mdl", {1: (1, 1, 28, 28), 64: (64, 1, 28, 28)}),
    "resnet20": ("examples/resnet20.mdl", {1: (1, 3, 32, 32), 64: (64, 3, 32, 32)}),
    "gpt": ("examples/gpt.mdl", {1: (1, 64), 32: (32, 64)}),
}
GPT_VOCAB = 512
TOLERANCE = 1e-4  # peers must match mdl native within this (relative and absolute)
START_LOAD = os.getloadavg()[0]  # taken on import, before anything is timed
TINY_MODEL = "model Tiny(x: f32[4]) -> f32[4] { return x + 1.0 }\n"


# ---- shared by bench/gemm.py -------------------------------------------------


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def versions() -> dict[str, str]:
    """Versions of everything timed; a missing optional peer says so."""
    import llvmlite
    import llvmlite.binding as llvm

    import mdl

    found = {
        "mdl": f"{mdl.__version__} ({git_revision()})",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "llvmlite": f"{llvmlite.__version__} (LLVM {'.'.join(map(str, llvm.llvm_version_info))})",
    }
    for name in ("torch", "onnxruntime", "threadpoolctl"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            found[name] = "not installed"
    return found


def git_revision() -> str:
    try:
        rev = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(ROOT), "status", "--porcelain", "--", "lang"],
            capture_output=True,
            text=True,
        ).stdout.strip()
        return rev + (" + uncommitted changes in lang/" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "no git"


def machine_header(command: str) -> list[str]:
    import llvmlite.binding as llvm

    llvm.initialize_native_target()
    v = versions()
    blas_env = {
        k: os.environ[k] for k in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE") if k in os.environ
    }
    return [
        f"Machine: {cpu_name()}, {os.cpu_count()} cores, {platform.machine()}, "
        f"{platform.system()} {platform.release()}; LLVM host CPU {llvm.get_host_cpu_name()}; "
        f"1-minute load average {START_LOAD:.2f} when the run started, "
        f"{os.getloadavg()[0]:.2f} when it ended (on a shared machine, others' work slows "
        "every runner: "
        "they are timed in interleaved rounds so that it hits all alike).",
        "",
        "Versions: " + ", ".join(f"{k} {val}" for k, val in v.items()) + ".",
        "",
        f"Environment: {', '.join(f'{k}={val}' for k, val in blas_env.items()) or 'no OPENBLAS_* set'}.",
        "",
        f"Made by `{command}` on {time.strftime('%Y-%m-%d')}.",
    ]


@dataclass
class Timing:
    median: float  # seconds
    runs: int


# several threads (see `measure`): rounds of blocks, each after a pause and untimed calls
BLOCK_ROUNDS = 4
QUIET_S = 0.25
SETTLE_S = 0.02


@dataclass
class Plan:
    """How long to time one runner: at least `min_runs` calls, more while `budget` seconds
    of its own calls last, at most `max_runs`."""

    call: Callable[[], Any]
    budget: float
    min_runs: int
    max_runs: int = 200
    settle: bool = False  # several threads: timed in blocks (see `measure`)


def measure(plans: dict[str, Plan]) -> dict[str, Timing]:
    """Median wall time of each runner's call, timed in interleaved rounds.

    One thread: each round calls every runner that still wants runs once, so a change in
    the machine's load (other processes on a shared machine) hits all runners alike and
    the ratios stay fair. Several threads: runners' idle workers spin on the cores after
    a call (onnxruntime's for tens of milliseconds, measured), which would slow whichever
    runner comes next. So each round gives every runner a block instead: a pause of
    QUIET_S (sleeping, so that the others' workers stop spinning), untimed calls for
    SETTLE_S (its own workers awake), then its share of timed calls; BLOCK_ROUNDS such
    rounds. Each runner is thus timed in its steady state, alone on the cores, as a user
    calling it repeatedly sees it. Two warm-up calls first, except for a call slower than
    a second, which is its own warm-up (its time counts) so that slow runners finish.
    """
    times: dict[str, list[float]] = {}
    for name, plan in plans.items():
        t = time.perf_counter()
        plan.call()
        first = time.perf_counter() - t
        times[name] = [first] if first > 1.0 else []
        if not times[name]:
            plan.call()
            plan.call()

    def wants_more(name: str, rounds_left: int = 1) -> bool:
        plan, got = plans[name], times[name]
        # in block mode, each round may take only its share of the runs and the budget
        share = max(1, BLOCK_ROUNDS - rounds_left + 1) / BLOCK_ROUNDS if rounds_left > 1 else 1
        runs, budget = plan.max_runs * share, plan.budget * share
        return len(got) < plan.min_runs * share or (len(got) < runs and sum(got) < budget)

    if any(plan.settle for plan in plans.values()):
        for left in range(BLOCK_ROUNDS, 0, -1):
            for name in [n for n in plans if wants_more(n, left)]:
                time.sleep(QUIET_S)
                until = time.perf_counter() + SETTLE_S
                plans[name].call()
                while time.perf_counter() < until:
                    plans[name].call()
                while wants_more(name, left):
                    t = time.perf_counter()
                    plans[name].call()
                    times[name].append(time.perf_counter() - t)
    while active := [name for name in plans if wants_more(name)]:
        for name in active:
            t = time.perf_counter()
            plans[name].call()
            times[name].append(time.perf_counter() - t)
    return {name: Timing(statistics.median(got), len(got)) for name, got in times.items()}


# ---- the models ----------------------------------------------------------------


def make_input(name: str, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(1234)
    if name == "gpt":
        return rng.integers(0, GPT_VOCAB, size=shape, dtype=np.int64)
    return rng.standard_normal(shape, dtype=np.float32)


def as_tuple(out: Any) -> tuple[np.ndarray, ...]:
    return out if isinstance(out, tuple) else (out,)


def max_error(got: tuple[np.ndarray, ...], want: tuple[np.ndarray, ...]) -> tuple[float, bool]:
    """Largest |got - want| over all outputs, and whether all are within TOLERANCE."""
    err, ok = 0.0, True
    for g, w in zip(got, want, strict=True):
        err = max(err, float(np.max(np.abs(g.astype(np.float64) - w))))
        ok = ok and bool(np.allclose(g, w, rtol=TOLERANCE, atol=TOLERANCE))
    return err, ok


@dataclass
class Case:
    model: str
    batch: int
    threads: int
    times: dict[str, Timing] = field(default_factory=dict)
    errors: dict[str, tuple[float, bool]] = field(default_factory=dict)


RUNNERS = ["mdl native", "reference", "PyTorch", "onnxruntime"]


def bench_model(
    name: str, tmp: Path, notes: list[str], thread_counts: list[int]
) -> tuple[list[Case], dict[str, float]]:
    import mdl
    from mdl.api import init_weights

    path = str(ROOT / MODELS[name][0])
    weights = init_weights(path, seed=0, random=True)
    t = time.perf_counter()
    native = mdl.load(path, weights=weights, backend="native")  # MDL_CACHE_DIR is empty: compiles
    compile_s = time.perf_counter() - t
    t = time.perf_counter()
    mdl.load(path, weights=weights, backend="native")  # now from the on-disk cache
    cached_s = time.perf_counter() - t
    natives = {
        n: mdl.load(path, weights=weights, backend="native", threads=n) for n in thread_counts
    }
    reference = mdl.load(path, weights=weights, backend="ref")

    module = None
    try:
        import peers

        module = peers.torch_model(name, weights)
    except ImportError as e:
        notes.append(f"PyTorch not run ({e}); nor onnxruntime, whose model is exported from it.")

    cases = []
    for batch, shape in MODELS[name][1].items():
        for threads in thread_counts:
            x = make_input(name, shape)
            case = Case(name, batch, threads)
            set_peer_threads(threads)
            runners: dict[str, Callable[[], Any]] = {
                "mdl native": lambda x=x, m=natives[threads]: m(x),
            }
            if threads == thread_counts[0]:  # the interpreter once: it is slow and numpy's anyway
                runners["reference"] = lambda x=x: reference(x)
            if module is not None:
                runners["PyTorch"] = peers.torch_runner(module)
                try:
                    runners["onnxruntime"] = peers.ort_runner(module, x, tmp, threads=threads)
                except ImportError as e:
                    if f"onnxruntime not run ({e})." not in notes:
                        notes.append(f"onnxruntime not run ({e}).")
            want = as_tuple(native(x))
            plans: dict[str, Plan] = {}
            for runner, fn in runners.items():
                call = (lambda fn=fn, x=x: fn(x)) if runner in ("PyTorch", "onnxruntime") else fn
                if runner != "mdl native":
                    case.errors[runner] = max_error(as_tuple(call()), want)
                    if not case.errors[runner][1]:
                        continue  # a peer computing something else is not timed
                slow = runner == "reference"
                plans[runner] = Plan(
                    call, budget=4.0 if slow else 2.0, min_runs=3 if slow else 5, settle=threads > 1
                )
            case.times = measure(plans)
            for runner, t in case.times.items():
                print(
                    f"  {name} batch {batch} threads {threads} {runner}: "
                    f"{t.median * 1e3:.3f} ms ({t.runs} runs)"
                )
            cases.append(case)
    return cases, {"compile": compile_s, "cached": cached_s}


def set_peer_threads(n: int) -> None:
    """PyTorch's intra-op threads and the reference's BLAS threads to n."""
    global _blas_limit
    try:
        import torch

        torch.set_num_threads(n)
    except ImportError:
        pass
    try:
        from threadpoolctl import threadpool_limits

        _blas_limit = threadpool_limits(n)
    except ImportError:
        pass


_blas_limit: Any = None


def warm_up_compiler(tmp: Path) -> None:
    """Compile the tiny model once, so that one-time costs (imports, the grammar, LLVM's
    initialization) do not land on the first model's compile time."""
    import mdl

    source = tmp / "warm.mdl"
    source.write_text(TINY_MODEL)
    mdl.load(str(source), backend="native", cache=False)


# ---- per-call overhead -----------------------------------------------------------


def per_call_overhead(tmp: Path) -> tuple[float, float]:
    """Median µs of an empty JIT-compiled ctypes call (same signature as mdl's entry) and of
    a call to a tiny mdl native model through `Model.__call__`."""
    import llvmlite.binding as llvm

    import mdl

    llvm.initialize_native_target()
    llvm.initialize_native_asmprinter()
    target = llvm.Target.from_default_triple().create_target_machine()
    module = llvm.parse_assembly("define i32 @empty(ptr %a, ptr %b, ptr %c) {\n  ret i32 0\n}\n")
    engine = llvm.create_mcjit_compiler(module, target)
    engine.finalize_object()
    proto = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p)
    empty = proto(engine.get_function_address("empty"))
    bufs = [np.zeros(8, dtype=np.int64) for _ in range(3)]
    a, b, c = (buf.ctypes.data for buf in bufs)

    source = tmp / "tiny.mdl"
    source.write_text(TINY_MODEL)
    tiny = mdl.load(str(source), backend="native")
    x = np.ones(4, dtype=np.float32)
    assert np.array_equal(tiny(x), x + 1.0)

    def per_call(fn: Callable[[], Any], n: int) -> float:
        samples = []
        for _ in range(21):
            t = time.perf_counter()
            for _ in range(n):
                fn()
            samples.append((time.perf_counter() - t) / n)
        return statistics.median(samples) * 1e6

    return per_call(lambda: empty(a, b, c), 20000), per_call(lambda: tiny(x), 2000)


# ---- report ------------------------------------------------------------------------


def ms(t: Timing | None) -> str:
    return f"{t.median * 1e3:.3f}" if t else "-"


def ratio(case: Case, peer: str) -> str:
    a, b = case.times.get("mdl native"), case.times.get(peer)
    return f"{a.median / b.median:.2f}" if a and b else "-"


def report(
    cases: list[Case],
    compiles: dict[str, dict[str, float]],
    overhead: tuple[float, float],
    notes: list[str],
    command: str,
) -> str:
    out = ["# Model speed", "", *machine_header(command), ""]
    out += [
        "Every runner gets the same number of threads (the `threads` column): mdl native "
        "`mdl.load(..., threads=n)`, PyTorch `torch.set_num_threads(n)` (one inter-op thread), "
        "onnxruntime n intra-op threads, and the reference interpreter (timed at one thread "
        "only) its numpy BLAS limited with threadpoolctl. Times are medians "
        "of whole calls from Python (ms); ratios are mdl native / peer (below 1 means mdl is "
        "faster). Weights: `init_weights(seed=0, random=True)`, the same for every runner; every "
        "peer's outputs matched mdl native within rtol = atol = 1e-4 before it was timed. "
        "onnxruntime runs the TorchScript export (opset 17, fixed shapes) with all graph "
        "optimizations.",
        "",
        "| model | batch | threads | mdl native | reference | PyTorch | onnxruntime | "
        "mdl/PyTorch | mdl/onnxruntime | runs (native/ref/torch/ort) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for c in cases:
        runs = "/".join(str(c.times[r].runs) if r in c.times else "-" for r in RUNNERS)
        out.append(
            f"| {c.model} | {c.batch} | {c.threads} | {ms(c.times.get('mdl native'))} | "
            f"{ms(c.times.get('reference'))} | {ms(c.times.get('PyTorch'))} | "
            f"{ms(c.times.get('onnxruntime'))} | {ratio(c, 'PyTorch')} | "
            f"{ratio(c, 'onnxruntime')} | {runs} |"
        )
    out += [
        "",
        "Largest |output - mdl native| per runner (all outputs of the model):",
        "",
        "| model | batch | threads | reference | PyTorch | onnxruntime |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for c in cases:
        cells = []
        for r in RUNNERS[1:]:
            if r not in c.errors:
                cells.append("-")
            else:
                err, ok = c.errors[r]
                cells.append(f"{err:.1e}" + ("" if ok else " (MISMATCH: not timed)"))
        out.append(f"| {c.model} | {c.batch} | {c.threads} | " + " | ".join(cells) + " |")
    out += [
        "",
        'mdl compile time: `mdl.load(..., backend="native")` into an empty JIT cache (front end, '
        "lowering, LLVM O3, machine code), and the same load again from the on-disk cache. "
        "Excluded from the run times above.",
        "",
        "| model | compile (s) | load from cache (s) |",
        "| --- | ---: | ---: |",
    ]
    for name, t in compiles.items():
        out.append(f"| {name} | {t['compile']:.2f} | {t['cached']:.2f} |")
    empty, tiny = overhead
    out += [
        "",
        "Per-call overhead (median µs per call): an empty JIT-compiled function called through "
        "ctypes with mdl's entry signature, against a call of the tiny native model "
        f"`{TINY_MODEL.strip()}` through `Model.__call__` (input checks, output allocation, call).",
        "",
        "| empty ctypes call | tiny mdl model call | overhead over the empty call | target |",
        "| ---: | ---: | ---: | ---: |",
        f"| {empty:.2f} | {tiny:.2f} | {tiny - empty:.2f} | < 5 |",
    ]
    if notes:
        out += ["", *notes]
    return "\n".join(out) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(MODELS), help="a subset of the models")
    parser.add_argument(
        "--threads", nargs="*", type=int, default=[1, 2], help="thread counts (default: 1 2)"
    )
    parser.add_argument(
        "--out",
        help="where to write the table (default: results/models.md for a full run; "
        "a subset is only printed)",
    )
    args = parser.parse_args()
    names = args.only or list(MODELS)
    command = "python bench/models.py" + (f" --only {' '.join(names)}" if args.only else "")

    notes: list[str] = []
    try:
        import threadpoolctl  # noqa: F401
    except ImportError:
        notes.append(
            "threadpoolctl not installed: the reference interpreter's BLAS threads were not limited."
        )
    try:
        import torch

        torch.set_num_interop_threads(1)
    except ImportError:
        pass

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        os.environ["MDL_CACHE_DIR"] = str(tmp / "jit")  # empty: the first load compiles
        warm_up_compiler(tmp)
        # first, while no peer's thread pool exists to share the cores with
        overhead = per_call_overhead(tmp)
        cases: list[Case] = []
        compiles: dict[str, dict[str, float]] = {}
        for name in names:
            print(f"{name}:", flush=True)
            got, compiles[name] = bench_model(name, tmp, notes, args.threads)
            cases += got
    text = report(cases, compiles, overhead, notes, command)
    print(text)
    out = args.out or (None if args.only else str(RESULTS / "models.md"))
    if out:
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        Path(out).write_text(text)


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    main()
