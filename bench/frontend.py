"""Front-end speed: `mdlc --help` start-up and `mdlc check` of a 1,000-line file.

Targets from issue 2: `mdlc check` of a 1,000-line file under 500 ms including
start-up; `mdlc --help` under 0.3 s. Runs each command as a user would (a new
process each time) and reports medians. Every `mdlc check` is cold: it runs with
an empty cache folder of its own (XDG_CACHE_HOME), so nothing a previous run
wrote (Lark's grammar cache, parser tables) helps it. Results:
bench/results/frontend.md.
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


def median_seconds(cmd: list[str], cold: bool = False, ok: bool = True) -> float:
    """Median wall time of `cmd`; `cold`: each run with a new empty cache folder."""
    times = []
    for _ in range(RUNS):
        with tempfile.TemporaryDirectory() as cache:
            env = {**os.environ, "XDG_CACHE_HOME": cache} if cold else None
            t = time.perf_counter()
            done = subprocess.run(cmd, capture_output=True, env=env)
            times.append(time.perf_counter() - t)
        if (done.returncode == 0) != ok:
            raise SystemExit(f"{cmd} exited {done.returncode}:\n{done.stderr.decode()}")
    return statistics.median(times)


def with_syntax_error(path: Path) -> Path:
    """The same file with one unfinished expression: Lark's error path."""
    text = path.read_text()
    bad = path.with_name("bad.mdl")
    bad.write_text(text.replace("    let y = h * 0.5 + x\n", "    let y = h * 0.5 +\n\n", 1))
    return bad


def where_mdl_is() -> str:
    """Installed or the source tree: an editable install reads the .py files of the repo."""
    found = subprocess.run(
        [sys.executable, "-c", "import mdl; print(mdl.__file__)"], capture_output=True, text=True
    ).stdout.strip()
    kind = "installed" if "site-packages" in found else "editable, source tree"
    venv = "a virtual environment" if sys.prefix != sys.base_prefix else "the base interpreter"
    return f"mdl {kind}, {venv}"


def load() -> str:
    try:
        return f"{os.getloadavg()[0]:.2f}"
    except OSError:
        return "?"


def main() -> None:
    mdlc = [sys.executable, "-m", "mdl.cli"]
    with tempfile.TemporaryDirectory() as tmp:
        big = thousand_line_file(Path(tmp))
        bad = with_syntax_error(big)
        lines = big.read_text().count("\n")
        load_start = load()
        rows = [
            (
                "`python -c pass` (interpreter start-up, for scale)",
                median_seconds([sys.executable, "-c", "pass"]),
                None,
            ),
            ("`mdlc --help`", median_seconds([*mdlc, "--help"]), 0.3),
            (
                f"`mdlc check` of a {lines}-line file (cold)",
                median_seconds([*mdlc, "check", str(big)], cold=True),
                0.5,
            ),
            (
                "the same with one syntax error (cold; Lark reports it)",
                median_seconds([*mdlc, "check", str(bad)], cold=True, ok=False),
                None,
            ),
        ]
        load_end = load()
    out = [
        "# Front-end speed",
        "",
        f"Machine: {platform.machine()}, {cpu_name()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()} ({where_mdl_is()}), "
        f"{platform.system()} {platform.release()}; "
        f"median of {RUNS} runs, each a new process; load average (1 min) {load_start} at the "
        f"start, {load_end} at the end. Made by `python bench/frontend.py`.",
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
