"""Diagnostics as you type: codes, UTF-16 ranges, related information, quick fixes, debouncing."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp

from .conftest import (
    ROOT,
    change_doc,
    make_client_fixture,
    open_doc,
    position_of,
    server_errors,
    wait_published,
)

pytestmark = pytest.mark.asyncio(loop_scope="module")
client = make_client_fixture(debounce_ms=0)

TYPO = """import nn

model M(x: f32[B, 4]) -> f32[B, 4] {
    let hidden = nn.relu(x)
    return hiden
}
"""

DUPLICATE = """fn f(x: f32[N]) -> f32[N] = x
fn f(x: f32[N]) -> f32[N] = x + 1.0
"""


async def test_unknown_name_has_code_range_help_and_a_quick_fix(client, tmp_path):
    uri = open_doc(client, tmp_path / "typo.mdl", TYPO)
    published = await wait_published(client, uri, 1)
    [d] = published.diagnostics
    assert d.code == "E0101"
    assert d.source == "mdl"
    assert d.severity == lsp.DiagnosticSeverity.Error
    start = position_of(TYPO, "hiden")
    assert d.range.start == start
    assert d.range.end == lsp.Position(line=start.line, character=start.character + 5)
    assert "did you mean `hidden`" in d.message

    actions = await client.text_document_code_action_async(
        lsp.CodeActionParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=d.range,
            context=lsp.CodeActionContext(diagnostics=[d]),
        )
    )
    [action] = actions
    assert action.kind == lsp.CodeActionKind.QuickFix
    [edit] = action.edit.changes[uri]
    assert edit.new_text == "hidden" and edit.range == d.range
    assert server_errors(client) == []


async def test_labels_become_related_information(client, tmp_path):
    uri = open_doc(client, tmp_path / "dup.mdl", DUPLICATE)
    published = await wait_published(client, uri, 1)
    dup = [d for d in published.diagnostics if d.code == "E0104"]
    assert dup, published.diagnostics
    [related] = dup[0].related_information
    assert related.message == "first defined here"
    assert related.location.uri == uri
    assert related.location.range.start == position_of(DUPLICATE, "f(x")


async def test_ranges_count_utf16_code_units(client, tmp_path):
    # `😀` is one character for mdl but two UTF-16 code units for LSP
    text = "fn g(x: f32[N]) -> f32[N] = x + 😀 + 1.0\n"
    uri = open_doc(client, tmp_path / "emoji.mdl", text)
    [d] = (await wait_published(client, uri, 1)).diagnostics
    assert d.code == "E0003"
    col = text.index("😀")
    assert d.range.start == lsp.Position(line=0, character=col)
    assert d.range.end == lsp.Position(line=0, character=col + 2)


async def test_a_checked_file_has_no_diagnostics_and_edits_update_them(client):
    path = ROOT / "examples" / "mlp.mdl"
    text = path.read_text()
    uri = open_doc(client, path, text)
    assert list((await wait_published(client, uri, 1)).diagnostics) == []
    broken = text.replace("nn.Dense[512, 256]", "nn.Dense[500, 256]")
    version = change_doc(client, uri, broken)
    [shape] = (await wait_published(client, uri, version)).diagnostics
    assert shape.code == "E0314"
    assert shape.range.start == position_of(broken, "h))", 0)
    version = change_doc(client, uri, text)
    assert list((await wait_published(client, uri, version)).diagnostics) == []


async def test_an_import_that_does_not_parse_is_reported_on_the_import(client, tmp_path):
    (tmp_path / "helpers.mdl").write_text("fn twice(x: f32[N]) -> f32[N] = x +\n")
    main = "from helpers import twice\n\nfn f(x: f32[N]) -> f32[N] = twice(x)\n"
    uri = open_doc(client, tmp_path / "main.mdl", main)
    diags = (await wait_published(client, uri, 1)).diagnostics
    syntax = [d for d in diags if d.code.startswith("E00")]
    assert syntax, diags
    assert syntax[0].range.start.line == 0  # the `from helpers import` line
    assert syntax[0].related_information[0].location.uri.endswith("helpers.mdl")


slow_client = make_client_fixture(debounce_ms=250)


async def test_quick_edits_publish_only_the_last_version(slow_client, tmp_path):
    """Five versions in a burst: the debounce drops the first four unchecked."""
    texts = [f"fn f(x: f32[N]) -> f32[N] = x + unknown{i}\n" for i in range(5)]
    uri = open_doc(slow_client, tmp_path / "burst.mdl", texts[0])
    for text in texts[1:]:
        last = change_doc(slow_client, uri, text)
    published = await wait_published(slow_client, uri, last)
    [d] = published.diagnostics
    assert "`unknown4`" in d.message
    assert {p.version for p in slow_client.published if p.uri == uri} == {last}
    # a request after the burst sees the latest text too
    hover = await slow_client.text_document_hover_async(
        lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=position_of(texts[-1], "f32"),
        )
    )
    assert hover is not None and "f32" in hover.contents.value
