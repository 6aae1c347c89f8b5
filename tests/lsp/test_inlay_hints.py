"""Inlay hints: the inferred shape after each `let` and each layer call."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp

from .conftest import ROOT, make_client_fixture, open_doc, position_of, server_errors

pytestmark = pytest.mark.asyncio(loop_scope="module")
client = make_client_fixture()

MLP = ROOT / "examples" / "mlp.mdl"


async def test_shapes_after_lets_and_layer_calls(client):
    text = MLP.read_text()
    uri = open_doc(client, MLP, text)
    lines = text.count("\n")
    hints = await client.text_document_inlay_hint_async(
        lsp.InlayHintParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=lsp.Range(
                start=lsp.Position(line=0, character=0), end=lsp.Position(line=lines, character=0)
            ),
        )
    )
    got = {(h.position.line, h.position.character): h.label for h in hints}
    after_h = position_of(text, " = nn.relu(fc1")
    assert got[(after_h.line, after_h.character)] == ": f32[B, 512]"
    end_fc1 = position_of(text, "fc1(x)", len("fc1(x)"))
    assert got[(end_fc1.line, end_fc1.character)] == " -> f32[B, 512]"
    end_fc3 = position_of(text, "fc3(h)", len("fc3(h)"))
    assert got[(end_fc3.line, end_fc3.character)] == " -> f32[B, 10]"
    # layer bindings are no tensors: no hint after `let fc1`
    assert (position_of(text, " = nn.Dense[784").line, 11) not in got
    assert all(h.kind == lsp.InlayHintKind.Type for h in hints)


async def test_only_the_requested_range(client):
    text = MLP.read_text()
    uri = open_doc(client, MLP, text)
    line = position_of(text, "fc3(h)").line
    hints = await client.text_document_inlay_hint_async(
        lsp.InlayHintParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            range=lsp.Range(
                start=lsp.Position(line=line, character=0),
                end=lsp.Position(line=line + 1, character=0),
            ),
        )
    )
    assert [h.label for h in hints] == [" -> f32[B, 10]"]
    assert server_errors(client) == []
