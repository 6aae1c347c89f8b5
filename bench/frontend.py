"""Front-end speed: `mdlc --help` start-up and `mdlc check` of a 1,000-line file.

Targets from issue 2: `mdlc check` of a 1,000-line file under 500 ms including
start-up; `mdlc --help` under 0.3 s. Runs each command as a user would (a new
process each time) and reports medians. Results: bench/results/frontend.md.
"""

from __future__ import annotations

import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RUNS = 7


def thousand_line_file(folder: Path) -> Path:
    """About 1,000 lines: many small fns and layers and one model using them."""
    parts = ["import nn", ""]
    n = 0
    while sum(p.count("\n") + 1 for p in parts) < 980:
        parts += [
            f"# block {n}",
            f"layer Block{n}[D](x: f32[B, D]) -> f32[B, D] {{",
            "    let fc = nn.Dense[D, D]",
            "    let h = nn.relu(fc(x))",
            "    let y = h * 0.5 + x",
            "    return y",
            "}",
            "",
            f"fn act{n}(x: f32[*S]) -> f32[*S] = max(x, 0.0) - 0.1 * min(x, 0.0)",
            "",
        ]
        n += 1
    parts += ["model Big(x: f32[B, 64]) -> f32[B, 64] {"]
    parts += [f"    let b{i} = Block{i}[64]" for i in range(n)]
    parts += ["    let y = x"]
    parts += [f"    y = act{i}(b{i}(y))" for i in range(n)]
    parts += ["    return y", "}"]
    path = folder / "big.mdl"
    path.write_text("\n".join(parts) + "\n")
    return path


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown cpu"


def median_seconds(cmd: list[str]) -> float:
    times = []
    for _ in range(RUNS):
        t = time.perf_counter()
        subprocess.run(cmd, check=True, capture_output=True)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main() -> None:
    mdlc = [sys.executable, "-m", "mdl.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        big = thousand_line_file(Path(tmp))
        lines = big.read_text().count("\n")
        subprocess.run(
            [*mdlc, "check", str(big)], check=True, capture_output=True
        )  # warm the grammar cache
        rows = [
            (
                "`python -c pass` (interpreter start-up, for scale)",
                median_seconds([sys.executable, "-c", "pass"]),
                None,
            ),
            ("`mdlc --help`", median_seconds([*mdlc, "--help"]), 0.3),
            (
                f"`mdlc check` of a {lines}-line file",
                median_seconds([*mdlc, "check", str(big)]),
                0.5,
            ),
        ]
    out = [
        "# Front-end speed",
        "",
        f"Machine: {platform.machine()}, {cpu_name()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, {platform.system()} {platform.release()}; "
        f"median of {RUNS} runs, each a new process. Made by `python bench/frontend.py`.",
        "",
        "| command | median (s) | target (s) |",
        "| --- | --- | --- |",
    ]
    for name, secs, target in rows:
        out.append(f"| {name} | {secs:.3f} | {target if target else '-'} |")
    text = "\n".join(out) + "\n"
    print(text)
    results = Path(__file__).parent / "results"
    results.mkdir(exist_ok=True)
    (results / "frontend.md").write_text(text)


if __name__ == "__main__":
    main()
