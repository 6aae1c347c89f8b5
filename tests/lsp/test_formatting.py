"""Formatting: the `mdlc fmt` layout as one edit; code that does not parse is left alone."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp

from .conftest import make_client_fixture, open_doc, server_errors

pytestmark = pytest.mark.asyncio(loop_scope="module")
client = make_client_fixture()

MESSY = "fn  f( x:f32[N] )->f32[N]=x*2.0   # twice\nlayer   L(x : f32[B,4]) -> f32[B,4] {\n  return x\n}\n"


async def format_doc(client, uri):
    return await client.text_document_formatting_async(
        lsp.DocumentFormattingParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            options=lsp.FormattingOptions(tab_size=4, insert_spaces=True),
        )
    )


async def test_formats_like_mdlc_fmt(client, tmp_path):
    from mdl.format import format_source

    uri = open_doc(client, tmp_path / "messy.mdl", MESSY)
    [edit] = await format_doc(client, uri)
    expected, _ = format_source(MESSY)
    assert edit.new_text == expected
    assert edit.new_text.startswith("fn f(x: f32[N]) -> f32[N] = x * 2.0  # twice\n")
    assert edit.range.start == lsp.Position(line=0, character=0)
    assert edit.range.end == lsp.Position(line=4, character=0)


async def test_formatted_and_broken_code_get_no_edits(client, tmp_path):
    from mdl.format import format_source

    clean, _ = format_source(MESSY)
    assert not await format_doc(client, open_doc(client, tmp_path / "clean.mdl", clean))
    broken = MESSY.replace("return x", "return (x")
    assert not await format_doc(client, open_doc(client, tmp_path / "broken.mdl", broken))
    assert server_errors(client) == []
