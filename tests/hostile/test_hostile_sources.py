"""Hostile sources -> the expected diagnostic, never a traceback or an E0901.

Every file in sources/ is run through the whole front end (`driver.check_file`:
read, decode, parse, resolve imports, elaborate). A hand-written file names its
expected code on the first line (`# expect: E0xxx`, alternatives as
`E0117|E0408`, or `# expect: ok` for "no error"); generated files (make_sources.py) carry theirs in its GENERATED
table. Cases where the compiler is known to be wrong are in KNOWN_BUGS and
run as strict xfails, so fixing the bug makes them fail until the entry goes.
Cases in KNOWN_HANGS run in a child process with a time and memory limit, so a
compiler that hangs on them cannot take the test run down with it.
"""

from __future__ import annotations

import importlib.util
import multiprocessing
import re
import resource
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

_EXPECT = re.compile(rb"# expect: (E\d{4}(?:\|E\d{4})*|ok)\r?\n")
# Seconds one file may take; the 1e5-token files are the slow ones.
TIME_LIMIT = 10.0

# file stem -> what is wrong (the compiler's bug, not the test's)
KNOWN_BUGS: dict[str, str] = {}
KNOWN_HANGS = {"power_tower"}
HANG_SECONDS = 3.0


def expected_codes(path: Path) -> set[str]:
    """The codes of which one must be reported; empty for "no error at all"."""
    generated = make_sources.GENERATED.get(path.stem)
    if generated is not None:
        return {generated[0]} if generated[0] else set()
    m = _EXPECT.match(path.read_bytes())
    assert m, f"{path.name} must start with `# expect: E0xxx` or `# expect: ok`"
    text = m.group(1).decode()
    return set() if text == "ok" else set(text.split("|"))


def _check_in_child(path: str, conn) -> None:
    limit = 2 * 1024**3
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    try:
        front = driver.check_file(path)
        conn.send([(d.code, str(d), d.is_error) for d in front.diagnostics])
    except BaseException as e:  # reported to the parent as a failure
        conn.send(f"{type(e).__name__}: {e}")


def run_front_end(path: Path) -> list[tuple[str, str, bool]]:
    """(code, text, is_error) of each diagnostic; hang-prone files run in a child."""
    if path.stem not in KNOWN_HANGS:
        front = driver.check_file(str(path))
        return [(d.code, str(d), d.is_error) for d in front.diagnostics]
    parent, child = multiprocessing.get_context("fork").Pipe(duplex=False)
    proc = multiprocessing.get_context("fork").Process(
        target=_check_in_child, args=(str(path), child)
    )
    proc.start()
    ready = parent.poll(HANG_SECONDS)
    result = parent.recv() if ready else None
    proc.kill()
    proc.join()
    assert result is not None, f"check_file did not finish within {HANG_SECONDS} s"
    assert isinstance(result, list), result
    return result


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
    want = expected_codes(path)
    assert want <= set(CODES)
    start = time.perf_counter()
    diags = run_front_end(path)
    elapsed = time.perf_counter() - start
    found = [code for code, _, is_error in diags if is_error]
    shown = "\n".join(text for _, text, _ in diags)
    assert "E0901" not in found, shown
    if want:
        assert want & set(found), f"expected one of {sorted(want)}, got:\n{shown}"
    else:
        assert found == [], shown
    for code, text, _ in diags:
        assert code in CODES
        assert "Traceback" not in text
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
