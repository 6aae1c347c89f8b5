"""`mdlc check`, the usage-error contract and the program entry points (mdl/cli.py)."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys

import pytest

from mdl import __version__
from mdl.cli import Console

# --- check ---------------------------------------------------------------------------------


def test_clean_file_exits_0_with_a_summary(mdlc, tiny):
    r = mdlc("check", tiny)
    assert r.code == 0
    assert r.out == ""
    assert r.err.strip() == "checked 1 file: no errors"


def test_error_is_rendered_rustc_style_and_exits_1(mdlc, broken):
    r = mdlc("check", broken)
    assert r.code == 1
    assert "error[E0302]: inner dimensions of a matrix product differ" in r.err
    assert f"--> {broken}:3:12" in r.err
    assert "    return x @ w" in r.err  # the source line under the header
    assert "^^^^^" in r.err
    assert r.err.rstrip().endswith("checked 1 file: 1 error")
    assert "\x1b[" not in r.err  # not a terminal: no colour


def test_short_format_is_one_line_per_diagnostic(mdlc, broken, tiny):
    r = mdlc("check", "--format", "short", tiny, broken)
    assert r.code == 1
    assert r.err.splitlines() == [
        f"{broken}:3:12: error[E0302]: inner dimensions of a matrix product differ"
    ]


def test_json_format_goes_to_stdout(mdlc, broken):
    r = mdlc("check", broken, "--format", "json")
    assert r.code == 1
    doc = json.loads(r.out)
    [d] = doc["diagnostics"]
    assert (d["code"], d["severity"], d["file"]) == ("E0302", "error", str(broken))
    assert d["range"]["start"]["line"] == 3
    assert r.err == ""


def test_json_of_a_clean_file_is_an_empty_list(mdlc, tiny):
    r = mdlc("check", "--format=json", tiny)
    assert r.code == 0
    assert json.loads(r.out) == {"diagnostics": []}


def test_several_files_one_bad(mdlc, tiny, broken):
    r = mdlc("check", tiny, broken)
    assert r.code == 1
    assert "checked 2 files: 1 error" in r.err


def test_a_shared_module_is_reported_once(mdlc, write):
    write("helpers.mdl", "fn bad(x: f32[B, 4]) -> f32[B, 4] = x +\n")
    model = "import helpers\n\nmodel {}(x: f32[B, 4]) -> f32[B, 4] {{\n    return x\n}}\n"
    a = write("a.mdl", model.format("A"))
    c = write("c.mdl", model.format("C"))
    r = mdlc("check", "--format", "short", a, c)
    assert r.code == 1
    assert len(r.err.splitlines()) == 1
    assert "helpers.mdl:1:" in r.err


def test_missing_file_is_E0701(mdlc, tmp_path):
    r = mdlc("check", tmp_path / "nope.mdl")
    assert r.code == 1
    assert "error[E0701]: cannot read" in r.err
    assert "nope.mdl" in r.err
    assert "no such file" in r.err


def test_missing_file_in_json(mdlc, tmp_path, tiny):
    r = mdlc("check", "--format", "json", tiny, tmp_path / "nope.mdl")
    assert r.code == 1
    assert [d["code"] for d in json.loads(r.out)["diagnostics"]] == ["E0701"]


def test_directory_is_not_readable_source(mdlc, tmp_path):
    r = mdlc("check", tmp_path)
    assert r.code == 1
    assert "E0701" in r.err


def test_define_overrides_a_compile_time_argument(mdlc, write):
    # With the default H = 8 the declared output f32[B, 8] holds; with H = 5 it does not.
    path = write("fixed.mdl", "model M[H = 8](x: f32[B, 8]) -> f32[B, H] {\n    return x\n}\n")
    assert mdlc("check", path).code == 0
    r = mdlc("check", path, "-D", "H=5")
    assert r.code == 1
    assert "error[E" in r.err


def test_define_of_an_unknown_argument(mdlc, tiny):
    r = mdlc("check", tiny, "-D", "NOPE=3")
    assert r.code == 1
    assert "E0406" in r.err


@pytest.mark.parametrize("bad", ["H", "H=", "=3", "H=abc", "1H=2"])
def test_malformed_define_is_a_usage_error(mdlc, tiny, bad):
    r = mdlc("check", tiny, "-D", bad)
    assert r.code == 2
    assert "argument -D" in r.err
    assert "usage: mdlc check" in r.err


# --- colour --------------------------------------------------------------------------------


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_colour_only_on_a_terminal_without_NO_COLOR(mdlc, broken, monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert mdlc("check", broken).code == 1
    assert "\x1b[1;31merror[E0302]" in terminal.getvalue()

    monkeypatch.setenv("NO_COLOR", "1")
    plain = _Terminal()
    monkeypatch.setattr(sys, "stderr", plain)
    assert mdlc("check", broken).code == 1
    assert "error[E0302]" in plain.getvalue()
    assert "\x1b[" not in plain.getvalue()


def test_console_colour_rules():
    assert Console(io.StringIO(), _Terminal(), {}).color
    assert not Console(io.StringIO(), _Terminal(), {"NO_COLOR": "1"}).color
    assert Console(io.StringIO(), _Terminal(), {"NO_COLOR": ""}).color  # empty: not set
    assert not Console(io.StringIO(), io.StringIO(), {}).color


def test_status_line_only_on_a_terminal():
    quiet = Console(io.StringIO(), io.StringIO(), {})
    with quiet.status("working"):
        pass
    assert quiet.err.getvalue() == ""
    loud = Console(io.StringIO(), _Terminal(), {})
    with loud.status("working"):
        pass
    assert "working" in loud.err.getvalue()
    assert loud.err.getvalue().endswith("\r\x1b[K")  # cleared afterwards


# --- usage ---------------------------------------------------------------------------------


def test_help_lists_every_command(mdlc):
    r = mdlc("--help")
    assert r.code == 0
    for command in (
        "check",
        "fmt",
        "init",
        "run",
        "build",
        "import",
        "export",
        "verify",
        "stats",
        "graph",
        "explain",
    ):
        assert re.search(rf"^\s+{command}\s", r.out, re.M), command


def test_version(mdlc):
    r = mdlc("--version")
    assert r.code == 0
    assert r.out.strip() == f"mdlc {__version__}"


@pytest.mark.parametrize(
    "argv",
    [
        (),
        ("frobnicate",),
        ("check",),
        ("run", "x.mdl"),
        ("stats", "x.mdl", "--batch", "0"),
        ("init", "x.mdl", "--seed", "-1"),
        ("check", "--format", "xml", "x.mdl"),
    ],
)
def test_usage_errors_exit_2(mdlc, argv):
    r = mdlc(*argv)
    assert r.code == 2
    assert "error:" in r.err


# --- the real program ----------------------------------------------------------------------


def test_python_dash_m_runs_the_cli(broken):
    done = subprocess.run(
        [sys.executable, "-m", "mdl.cli", "check", "--format", "short", str(broken)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    assert "error[E0302]" in done.stderr
    assert "Traceback" not in done.stderr


def test_python_dash_m_keeps_usage_errors(tiny):
    # Run as __main__ the module is loaded twice; a command's UsageError must still exit 2.
    argv = ["run", str(tiny), "--weights", "w.safetensors", "-o", "out.npy"]
    done = subprocess.run(
        [sys.executable, "-m", "mdl.cli", *argv], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("mdlc run: error: ") and "`.npz`" in done.stderr


def test_help_imports_nothing_heavy():
    # What keeps `mdlc --help` fast: the parser never imports numpy, lark or the driver.
    code = (
        "import sys\n"
        "from mdl.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in ('numpy', 'lark', 'mdl.driver') if m in sys.modules]\n"
        "print('HEAVY', heavy)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "HEAVY []" in done.stdout


@pytest.mark.skipif(shutil.which("mdlc") is None, reason="console script not installed")
def test_console_script(tiny):
    env = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        ["mdlc", "check", str(tiny)], capture_output=True, text=True, timeout=60, env=env
    )
    assert done.returncode == 0
    assert "no errors" in done.stderr
