"""Run every benchmark in bench/ (the Makefile's `bench` target), each in its own process.

Separate processes keep one benchmark's settings (thread limits, the JIT cache folder)
out of the next one's numbers. Results: bench/results/*.md.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

BENCHMARKS = ["frontend.py", "models.py", "gemm.py", "lsp.py"]

if __name__ == "__main__":
    here = Path(__file__).resolve().parent
    failed = []
    for name in BENCHMARKS:
        print(f"== bench/{name}", flush=True)
        if subprocess.run([sys.executable, str(here / name)]).returncode != 0:
            failed.append(name)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")
