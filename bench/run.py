"""Run every benchmark in bench/ (the Makefile's `bench` target)."""

from __future__ import annotations

import runpy
from pathlib import Path

if __name__ == "__main__":
    runpy.run_path(str(Path(__file__).parent / "frontend.py"), run_name="__main__")
