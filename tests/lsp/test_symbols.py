"""Document symbols (outline) and workspace symbols (declarations in the workspace and stdlib)."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp

from .conftest import ROOT, make_client_fixture, open_doc, position_of, server_errors

pytestmark = pytest.mark.asyncio(loop_scope="module")
client = make_client_fixture()

GPT = ROOT / "examples" / "gpt.mdl"


async def test_outline_of_a_file(client):
    text = GPT.read_text()
    uri = open_doc(client, GPT, text)
    symbols = await client.text_document_document_symbol_async(
        lsp.DocumentSymbolParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    assert [(s.name, s.kind) for s in symbols] == [
        ("nn", lsp.SymbolKind.Module),
        ("transformer", lsp.SymbolKind.Module),
        ("Gpt", lsp.SymbolKind.Class),
    ]
    gpt = symbols[2]
    assert gpt.selection_range.start == position_of(text, "Gpt[")
    assert gpt.detail.startswith("model Gpt[V = 512, T = 64")
    kids = [(c.name, c.detail) for c in gpt.children]
    assert kids[:6] == [
        ("V", "ctparam"),
        ("T", "ctparam"),
        ("D", "ctparam"),
        ("H", "ctparam"),
        ("L", "ctparam"),
        ("ids", "input"),
    ]
    assert ("blocks", "let") in kids and ("head", "let") in kids


async def test_workspace_symbols_reach_the_stdlib(client):
    found = await client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query="LayerNorm"))
    assert [(s.name, s.location.uri.rsplit("/", 1)[-1]) for s in found] == [("LayerNorm", "nn.mdl")]
    fuzzy = await client.workspace_symbol_async(lsp.WorkspaceSymbolParams(query="resnt"))
    assert "ResNet20" in {s.name for s in fuzzy}  # examples/ is the workspace folder
    assert server_errors(client) == []
