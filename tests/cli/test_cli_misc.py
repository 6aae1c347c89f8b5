"""`mdlc stats`, `graph`, `explain` and `fmt`, and the internal-error guard (mdl/stats.py, graphviz.py)."""

from __future__ import annotations

import os
import re
import stat
import sys
import types

import pytest

from mdl import codes
from mdl.explain import explanation
from mdl.graphviz import quote
from mdl.stats import MODEL_ROW, Cost, human_bytes, human_count

# --- stats ---------------------------------------------------------------------------------


def _stats_of(path, batch=1, defines=None):
    from mdl.driver import check_file
    from mdl.stats import graph_stats

    fe = check_file(str(path), defines)
    assert fe.ok and fe.graph is not None, fe.diagnostics
    return graph_stats(fe.graph, batch=batch)


def test_stats_of_the_tiny_model_follow_the_formulas(tiny):
    b, h = 32, 8
    stats = _stats_of(tiny, batch=b)
    rows = {r.path: r.cost for r in stats.rows}
    assert list(rows) == [MODEL_ROW, "fc1", "fc2"]
    f32 = 4
    # fc1: transpose (no FLOPs), x @ w.T (2 * B * H * 4), + bias (B * H)
    assert rows["fc1"] == Cost(
        params=h * 4 + h,
        param_bytes=(h * 4 + h) * f32,
        flops=2 * b * h * 4 + b * h,
        activation_bytes=(4 * h + b * h + b * h) * f32,
    )
    assert rows["fc2"].flops == 2 * b * 2 * h + b * 2
    # The model body: max(h, 0.0), one op per element; its constant costs nothing.
    assert rows[MODEL_ROW] == Cost(flops=b * h, activation_bytes=b * h * f32)
    assert stats.total == rows[MODEL_ROW] + rows["fc1"] + rows["fc2"]
    assert stats.symbols == ("B",)


def test_stats_rows_sum_their_subtrees(deep):
    stats = _stats_of(deep, defines={"L": 3})
    rows = {r.path: r for r in stats.rows}
    assert [r.path for r in stats.rows][:4] == [
        "blocks",
        "blocks.0",
        "blocks.0.fc",
        "blocks.0.norm",
    ]
    assert rows["blocks.0.norm"].depth == 2
    for i in range(3):
        block = rows[f"blocks.{i}"].cost
        assert block == rows[f"blocks.{i}.fc"].cost + rows[f"blocks.{i}.norm"].cost
    assert rows["blocks"].cost == sum((rows[f"blocks.{i}"].cost for i in range(3)), Cost())
    assert rows["blocks.1.norm"].cost.buffers == 4  # the `scale` buffer, not a parameter
    assert rows["blocks.1.norm"].cost.params == 0
    assert stats.total.params == 3 * (16 + 4)


def test_stats_command_prints_a_table(mdlc, tiny):
    r = mdlc("stats", tiny, "--batch", "32")
    assert r.code == 0, r.err
    lines = r.out.splitlines()
    assert lines[0] == "model Tiny: 58 parameters (232 B)"
    assert lines[1] == "symbolic dims B set to 32 (change with --batch)"
    assert lines[2].split() == ["layer", "params", "param", "bytes", "FLOPs", "activations"]
    assert re.fullmatch(r"fc1\s+40\s+160 B\s+2\.3K\s+2\.1 KiB", lines[5])
    assert lines[-3].split()[:2] == ["total", "58"]
    # the native code needs no temporaries: each product writes its activation's output
    # directly (the bias and max run inside the product's kernel)
    assert lines[-2] == "native temporaries: 0 B in one arena of 0 slots (peak; 0 B without reuse)"
    assert lines[-1] == "  arena bytes = 0"


def test_stats_depth_and_defines(mdlc, deep):
    r = mdlc("stats", deep, "--depth", "2", "-D", "L=3")
    assert r.code == 0, r.err
    assert "buffer bytes" in r.out  # the model has buffers
    assert "blocks.2" in r.out
    assert "blocks.0.fc" not in r.out


def test_stats_of_a_broken_file(mdlc, broken):
    r = mdlc("stats", broken)
    assert r.code == 1
    assert "E0302" in r.err


def test_ops_without_a_flops_rule_are_named(mdlc, tiny, monkeypatch):
    import dataclasses

    from mdl.primitives import REGISTRY

    monkeypatch.setitem(REGISTRY, "maximum", dataclasses.replace(REGISTRY["maximum"], flops=None))
    r = mdlc("stats", tiny)
    assert r.code == 0, r.err
    assert "\nnote: no FLOPs rule for `maximum`; counted as zero\n" in r.out
    assert re.search(r"^\(model\)\s+0\s+0 B\s+0\s", r.out, re.M)


@pytest.mark.parametrize(
    ("n", "text"),
    [
        (0, "0"),
        (999, "999"),
        (1000, "1K"),
        (2304, "2.3K"),
        (999_999, "1M"),
        (5_600_000, "5.6M"),
        (12_000_000_000, "12G"),
    ],
)
def test_human_count(n, text):
    assert human_count(n) == text


@pytest.mark.parametrize(
    ("n", "text"),
    [(0, "0 B"), (1023, "1023 B"), (1024, "1.0 KiB"), (9626, "9.4 KiB"), (3 * 1024**3, "3.0 GiB")],
)
def test_human_bytes(n, text):
    assert human_bytes(n) == text


# --- graph ---------------------------------------------------------------------------------


def _dot_is_consistent(text: str) -> set[str]:
    """Balanced braces, and every edge end is a declared node; returns the node ids."""
    assert text.count("{") == text.count("}")
    declared = set(re.findall(r"^\s*(\w+) \[label=", text, re.M))
    for a, b in re.findall(r"^\s*(\w+) -> (\w+)", text, re.M):
        assert a in declared and b in declared, (a, b)
    return declared


def test_graph_on_stdout(mdlc, tiny):
    r = mdlc("graph", tiny)
    assert r.code == 0, r.err
    assert r.out.startswith('digraph "Tiny" {')
    nodes = _dot_is_consistent(r.out)
    assert {"in0", "out0", "out1"} <= nodes
    assert 'label="x\\nf32[B, 4]"' in r.out
    assert 'label="y\\nf32[B, 2]"' in r.out
    assert 'label="matmul\\nf32[B, 8]"' in r.out
    assert r.out.count("subgraph cluster_") == 2
    assert 'graph [label="fc1"' in r.out


def test_graph_nests_clusters(mdlc, deep, tmp_path):
    out = tmp_path / "g.dot"
    r = mdlc("graph", deep, "-o", out)
    assert r.code == 0, r.err
    text = out.read_text()
    _dot_is_consistent(text)
    labels = re.findall(r'graph \[label="([^"]+)"', text)
    assert labels == [
        "blocks",
        "blocks.0",
        "blocks.0.fc",
        "blocks.0.norm",
        "blocks.1",
        "blocks.1.fc",
        "blocks.1.norm",
    ]
    assert 'style="filled,dashed"' in text  # the buffer
    assert r.out == ""


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_files_get_ordinary_permissions(mdlc, tiny, tmp_path):
    old = os.umask(0o022)
    try:
        out = tmp_path / "g.dot"
        assert mdlc("graph", tiny, "-o", out).code == 0
    finally:
        os.umask(old)
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_graph_is_deterministic(mdlc, deep):
    assert mdlc("graph", deep).out == mdlc("graph", deep).out


def test_svg_without_graphviz(mdlc, tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    out = tmp_path / "g.svg"
    r = mdlc("graph", tiny, "-o", out)
    assert r.code == 1
    assert "Graphviz `dot` not found; write a .dot file instead" in r.err
    assert not out.exists()


def _fake_dot(folder, script: str) -> None:
    folder.mkdir()
    exe = folder / "dot"
    exe.write_text(f"#!{sys.executable}\n{script}")
    exe.chmod(exe.stat().st_mode | stat.S_IEXEC)


@pytest.mark.skipif(os.name != "posix", reason="fake `dot` is a POSIX script")
def test_svg_through_dot(mdlc, tiny, tmp_path, monkeypatch):
    # A stand-in `dot` that checks its flag and wraps what it reads, so the test sees the plumbing.
    _fake_dot(
        tmp_path / "bin",
        "import sys\nassert sys.argv[1] == '-Tsvg'\n"
        "sys.stdout.write('<svg>' + str(len(sys.stdin.read())) + '</svg>')\n",
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    out = tmp_path / "g.svg"
    r = mdlc("graph", tiny, "-o", out)
    assert r.code == 0, r.err
    dot_text = mdlc("graph", tiny).out
    assert out.read_text() == f"<svg>{len(dot_text.encode())}</svg>"


@pytest.mark.skipif(os.name != "posix", reason="fake `dot` is a POSIX script")
def test_failing_dot(mdlc, tiny, tmp_path, monkeypatch):
    _fake_dot(
        tmp_path / "bin",
        "import sys\nsys.stderr.write('Error: syntax error in line 3\\n')\nsys.exit(1)\n",
    )
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    r = mdlc("graph", tiny, "-o", tmp_path / "g.svg")
    assert r.code == 1
    assert "Graphviz `dot` failed: Error: syntax error in line 3" in r.err


def test_graph_output_extension(mdlc, tiny, tmp_path):
    r = mdlc("graph", tiny, "-o", tmp_path / "g.png")
    assert r.code == 2
    assert "must end in `.dot` or `.svg`" in r.err


def test_dot_quoting():
    assert quote('a "b" \\ c\nd') == '"a \\"b\\" \\\\ c\\nd"'


# --- explain -------------------------------------------------------------------------------


@pytest.mark.parametrize("typed", ["E0302", "e302", "0302"])
def test_explain_prints_the_explanation(mdlc, typed):
    r = mdlc("explain", typed)
    assert r.code == 0
    text = explanation("E0302")
    if text is not None:
        assert r.out.strip() == text.strip()
    else:
        assert r.out.startswith(f"# E0302: {codes.title('E0302')}")


def test_explain_unknown_code(mdlc):
    r = mdlc("explain", "E9999")
    assert r.code == 1
    assert "error[E0703]: no error code `E9999`" in r.err
    assert r.out == ""


# --- fmt -----------------------------------------------------------------------------------


@pytest.fixture
def fake_formatter(monkeypatch):
    """A stand-in `mdl.format`: upper-cases `let`s, refuses text containing `@@`.

    The CLI's part (reading, atomic rewriting, --check, exit codes) is what is
    tested here, independently of the real formatter's rules.
    """
    from mdl.diagnostics import Diagnostic
    from mdl.span import Span

    def format_source(text, path):
        if "@@" in text:
            line = text[: text.index("@@")].count("\n") + 1
            return None, [
                Diagnostic("E0003", "unexpected character `@`", Span(path, line, 1, line, 2))
            ]
        return text.replace("let  ", "let "), []

    module = types.ModuleType("mdl.format")
    module.format_source = format_source
    monkeypatch.setitem(sys.modules, "mdl.format", module)


def test_fmt_rewrites_in_place_and_keeps_permissions(mdlc, write, fake_formatter):
    path = write("a.mdl", "let  x = 1\n")
    path.chmod(0o640)
    r = mdlc("fmt", path)
    assert r.code == 0, r.err
    assert path.read_text() == "let x = 1\n"
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert f"reformatted {path}" in r.err
    assert [p.name for p in path.parent.iterdir()] == ["a.mdl"]  # no temporary left behind


@pytest.mark.skipif(os.name != "posix", reason="symbolic links")
def test_fmt_follows_a_symbolic_link(mdlc, write, fake_formatter):
    real = write("real.mdl", "let  x = 1\n")
    link = real.with_name("link.mdl")
    link.symlink_to(real.name)
    assert mdlc("fmt", link).code == 0
    assert link.is_symlink()
    assert real.read_text() == "let x = 1\n"


def test_fmt_check_lists_files_and_changes_nothing(mdlc, write, fake_formatter):
    messy = write("messy.mdl", "let  x = 1\n")
    clean = write("clean.mdl", "let x = 1\n")
    r = mdlc("fmt", "--check", messy, clean)
    assert r.code == 1
    assert r.out == f"{messy}\n"
    assert messy.read_text() == "let  x = 1\n"
    assert mdlc("fmt", "--check", clean).code == 0


def test_fmt_never_touches_a_file_with_syntax_errors(mdlc, write, fake_formatter):
    bad = write("bad.mdl", "let  x = 1\nlet y = @@\n")
    good = write("good.mdl", "let  z = 2\n")
    r = mdlc("fmt", bad, good)
    assert r.code == 1
    assert f"--> {bad}:2:1" in r.err
    assert bad.read_text() == "let  x = 1\nlet y = @@\n"
    assert good.read_text() == "let z = 2\n"  # the other file is still formatted


def test_fmt_missing_and_undecodable_files(mdlc, tmp_path, fake_formatter):
    latin = tmp_path / "latin.mdl"
    latin.write_bytes(b"# caf\xe9\n")
    r = mdlc("fmt", tmp_path / "none.mdl", latin)
    assert r.code == 1
    assert "E0701" in r.err and "E0001" in r.err
    assert latin.read_bytes() == b"# caf\xe9\n"


def test_fmt_with_the_real_formatter(mdlc, tiny):
    pytest.importorskip("mdl.format")
    first = mdlc("fmt", tiny)
    assert first.code == 0, first.err
    assert mdlc("fmt", "--check", tiny).code == 0  # idempotent


# --- the internal-error guard ---------------------------------------------------------------


def test_unexpected_exception_is_E0901_without_traceback(mdlc, tiny, monkeypatch):
    import mdl.stats

    def explode(*args, **kwargs):
        raise RuntimeError("the flux capacitor is empty")

    monkeypatch.setattr(mdl.stats, "graph_stats", explode)
    monkeypatch.delenv("MDL_BACKTRACE", raising=False)
    r = mdlc("stats", tiny)
    assert r.code == 1
    assert (
        "error[E0901]: internal compiler error (please report): RuntimeError: "
        "the flux capacitor is empty"
    ) in r.err
    assert "Traceback" not in r.err

    monkeypatch.setenv("MDL_BACKTRACE", "1")
    assert "Traceback" in mdlc("stats", tiny).err
