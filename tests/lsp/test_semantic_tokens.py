"""Semantic tokens: names coloured by what they resolve to, comments, in UTF-16 units."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp

from .conftest import ROOT, make_client_fixture, open_doc, server_errors

pytestmark = pytest.mark.asyncio(loop_scope="module")
client = make_client_fixture()


async def tokens_of(client, path, text=None):
    uri = open_doc(client, path, text)
    result = await client.text_document_semantic_tokens_full_async(
        lsp.SemanticTokensParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )
    lines = (text if text is not None else path.read_text()).split("\n")
    out, line, col = [], 0, 0
    data = result.data
    for i in range(0, len(data), 5):
        dl, dc, length, kind, mods = data[i : i + 5]
        line += dl
        col = col + dc if dl == 0 else dc
        word = lines[line].encode("utf-16-le")[2 * col : 2 * (col + length)].decode("utf-16-le")
        out.append((word, kind, mods))
    return out


async def test_names_are_coloured_by_meaning(client):
    from mdl_lsp.tokens import TOKEN_MODIFIERS, TOKEN_TYPES

    got = await tokens_of(client, ROOT / "examples" / "gpt.mdl")
    kinds = {}
    for word, kind, mods in got:
        kinds.setdefault(word, (TOKEN_TYPES[kind], mods))
    assert kinds["nn"][0] == "namespace"
    assert kinds["Embedding"][0] == "class"
    assert kinds["GptBlock"][0] == "class"
    assert kinds["V"] == ("typeParameter", 1 << TOKEN_MODIFIERS.index("declaration"))
    assert kinds["B"][0] == "typeParameter"
    assert kinds["ids"][0] == "parameter"
    assert kinds["tok"][0] == "variable"
    assert kinds["arange"] == ("function", 1 << TOKEN_MODIFIERS.index("defaultLibrary"))
    assert kinds["i64"][0] == "type"
    assert kinds["bias"][0] == "typeParameter"  # the keyword argument names Dense's ctparam
    assert any(
        TOKEN_TYPES[k] == "comment" and w.startswith("# examples/gpt.mdl") for w, k, _ in got
    )


async def test_non_ascii_comments_count_utf16_units(client, tmp_path):
    text = "# 😀 café\nfn f(x: f32[N]) -> f32[N] = x  # é\n"
    got = await tokens_of(client, tmp_path / "u.mdl", text)
    words = [w for w, _, _ in got]
    assert words == ["# 😀 café", "f", "x", "f32", "N", "f32", "N", "x", "# é"]
    assert server_errors(client) == []
