"""Hostile sources -> the expected diagnostic, never a traceback or an E0901.

Every file in sources/ is run through the whole front end (`driver.check_file`:
read, decode, parse, resolve imports, elaborate). A hand-written file names its
expected code on the first line (`# expect: E0xxx`, or `# expect: ok` for
"no error"); generated files (make_sources.py) carry theirs in its GENERATED
table. Cases where the compiler is known to be wrong are in KNOWN_BUGS and
run as strict xfails, so fixing the bug makes them fail until the entry goes.
"""

from __future__ import annotations

import importlib.util
import re
import time
from pathlib import Path

import pytest

from mdl import driver
from mdl.codes import CODES

HERE = Path(__file__).parent
SOURCES = HERE / "sources"
_spec = importlib.util.spec_from_file_location("make_hostile_sources", HERE / "make_sources.py")
assert _spec and _spec.loader
make_sources = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(make_sources)

_EXPECT = re.compile(rb"# expect: (E\d{4}|ok)\r?\n")
# Seconds one file may take; the 1e5-token files are the slow ones.
TIME_LIMIT = 10.0

# file stem -> what is wrong (the compiler's bug, not the test's)
KNOWN_BUGS: dict[str, str] = {}


def expected_code(path: Path) -> str | None:
    generated = make_sources.GENERATED.get(path.stem)
    if generated is not None:
        return generated[0]
    m = _EXPECT.match(path.read_bytes())
    assert m, f"{path.name} must start with `# expect: E0xxx` or `# expect: ok`"
    code = m.group(1).decode()
    return None if code == "ok" else code


def cases() -> list:
    params = []
    for path in sorted(SOURCES.glob("*.mdl")):
        marks = []
        if path.stem in KNOWN_BUGS:
            marks.append(pytest.mark.xfail(strict=True, reason=KNOWN_BUGS[path.stem]))
        params.append(pytest.param(path, id=path.stem, marks=marks))
    return params


def test_corpus_is_complete():
    files = {p.stem for p in SOURCES.glob("*.mdl")}
    assert len(files) >= 60
    assert set(make_sources.GENERATED) <= files, "run tests/hostile/make_sources.py"
    for name, (_, data) in make_sources.GENERATED.items():
        assert (SOURCES / f"{name}.mdl").read_bytes() == data, f"{name} is stale"
    assert sum(p.stat().st_size for p in SOURCES.iterdir()) < 2_000_000


@pytest.mark.parametrize("path", cases())
def test_hostile_source(path: Path):
    want = expected_code(path)
    assert want is None or want in CODES
    start = time.perf_counter()
    front = driver.check_file(str(path))
    elapsed = time.perf_counter() - start
    found = [d.code for d in front.diagnostics if d.is_error]
    shown = "\n".join(str(d) for d in front.diagnostics)
    assert "E0901" not in found, shown
    if want is None:
        assert found == [], shown
    else:
        assert want in found, f"expected {want}, got:\n{shown}"
    for d in front.diagnostics:
        assert d.code in CODES
        assert d.message and "Traceback" not in d.message
    assert elapsed < TIME_LIMIT, f"took {elapsed:.1f} s"


def test_oversized_file_is_e0012(tmp_path):
    big = tmp_path / "big.mdl"
    with big.open("wb") as f:
        f.write(b"# " + b"x" * (17 * 1024 * 1024) + b"\n")
    codes = [d.code for d in driver.check_file(str(big)).diagnostics]
    assert codes == ["E0012"]


def test_directory_instead_of_file_is_e0701(tmp_path):
    codes = [d.code for d in driver.check_file(str(tmp_path)).diagnostics]
    assert codes == ["E0701"]
