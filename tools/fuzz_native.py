"""Long differential fuzz runs, native vs reference: graph seeds -> failures saved as .mdl.

    python tools/fuzz_native.py --seed S --count N --save-dir fuzz-failures/

Generates N random graphs (seeds S .. S+N-1, tests/native/graphgen.py), 10 to a model,
checks each model as tests/native/test_fuzz_native.py does (tests/native/fuzzcheck.py) in
worker processes, prints every failure with its graph seed and reduced model, saves it to
the save folder (`<seed>.mdl`, `<seed>.npz` inputs, `<seed>.weights.npz`), and prints the
primitive coverage. A model whose worker dies (a crash in generated code) is re-run alone,
then graph by graph, to name the seed that crashes. Exit status 1 when anything failed.
`--count 1` replays one seed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "native"))

Outcome = tuple[Any, list[str], int]  # fuzzcheck.Coverage, failure reports, outputs compared


def check_model(seeds: range, save_dir: str) -> Outcome:
    import fuzzcheck
    from graphgen import make_case

    with tempfile.TemporaryDirectory(prefix="mdl-fuzz-") as tmp:
        result = fuzzcheck.check(make_case(seeds), Path(tmp), Path(save_dir))
    return result.coverage, [f.report() for f in result.failures], result.outputs


def crash_report(seeds: range, save_dir: Path) -> str:
    """Save the graphs `seeds` (one model) as a crash case; the report to print."""
    import numpy as np
    from graphgen import make_case

    case = make_case(seeds)
    save_dir.mkdir(parents=True, exist_ok=True)
    path = save_dir / f"{seeds.start}.mdl"
    path.write_text(
        f"# fuzz failure (crash), graph seeds {seeds.start}..{seeds.stop - 1}\n{case.source}"
    )
    np.savez(save_dir / f"{seeds.start}.npz", **case.inputs)
    return (
        f"fuzz failure, graph seed {seeds.start}: crash (the process running it died)\n"
        f"--- model ---\n{case.source}\nsaved: {path}"
    )


def run_alone(seeds: range, save_dir: Path) -> Outcome | None:
    """The outcome of one model in a fresh process; None when that process dies."""
    with ProcessPoolExecutor(1) as pool:
        try:
            return pool.submit(check_model, seeds, str(save_dir)).result()
        except BrokenProcessPool:
            return None


def outcomes(models: list[range], jobs: int, save_dir: Path) -> Iterator[tuple[range, Outcome]]:
    broken: list[range] = []
    with ProcessPoolExecutor(jobs) as pool:
        futures = {pool.submit(check_model, s, str(save_dir)): s for s in models}
        for future in as_completed(futures):
            try:
                yield futures[future], future.result()
            except BrokenProcessPool:  # every model still running or queued lands here
                broken.append(futures[future])
    for seeds in sorted(broken, key=lambda r: r.start):
        for leftover in save_dir.glob(f"running-{seeds.start}.*"):  # its worker died
            leftover.unlink()
        alone = run_alone(seeds, save_dir)
        if alone is not None:
            yield seeds, alone
            continue
        reports: list[str] = []
        for seed in seeds:  # the model crashes alone: find the graphs that do
            one = range(seed, seed + 1)
            outcome = run_alone(one, save_dir)
            reports.extend(outcome[1] if outcome is not None else [crash_report(one, save_dir)])
        yield seeds, (None, reports or [crash_report(seeds, save_dir)], 0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=1, help="the first graph seed")
    parser.add_argument("--count", type=int, default=1000, help="how many graphs")
    parser.add_argument("--per-model", type=int, default=10, help="graphs in one model")
    parser.add_argument("--save-dir", default=str(ROOT / "fuzz-failures"))
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument(
        "--known-bugs",
        action="store_true",
        help="also generate what triggers the known, unfixed bugs (graphgen.KNOWN_BUGS)",
    )
    args = parser.parse_args(argv)
    if args.known_bugs:
        os.environ["MDL_FUZZ_KNOWN_BUGS"] = "1"  # read by graphgen in the workers
    from fuzzcheck import Coverage, coverage_table

    end = args.seed + args.count
    models = [range(s, min(s + args.per_model, end)) for s in range(args.seed, end, args.per_model)]
    save_dir = Path(args.save_dir)
    coverage = Coverage()
    failures = outputs = done = 0
    started = time.monotonic()
    for seeds, (counts, reports, compared) in outcomes(models, max(1, args.jobs), save_dir):
        if counts is not None:
            coverage.update(counts)
        outputs += compared
        done += len(seeds)
        for report in reports:
            failures += 1
            print(f"\n{report}", flush=True)
        if done % 200 < len(seeds) or done == args.count:
            rate = done / max(time.monotonic() - started, 1e-9)
            print(
                f"{done}/{args.count} graphs, {failures} failures ({rate:.1f} graphs/s)", flush=True
            )
    print(f"\n{coverage_table(coverage)}")
    print(
        f"\n{args.count} graphs (seeds {args.seed}..{end - 1}), {outputs} outputs compared, "
        f"{failures} failures" + (f", saved in {save_dir}" if failures else "")
    )
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
