"""Hover: signatures and doc comments of declarations and primitives, types of bindings."""

from __future__ import annotations

import pytest
from lsprotocol import types as lsp

from .conftest import ROOT, make_client_fixture, open_doc, position_of, server_errors

pytestmark = pytest.mark.asyncio(loop_scope="module")
client = make_client_fixture()

MLP = ROOT / "examples" / "mlp.mdl"
GPT = ROOT / "examples" / "gpt.mdl"


async def hover_at(client, path, needle, delta=0):
    text = path.read_text()
    uri = open_doc(client, path, text)
    result = await client.text_document_hover_async(
        lsp.HoverParams(
            text_document=lsp.TextDocumentIdentifier(uri=uri),
            position=position_of(text, needle, delta),
        )
    )
    return result.contents.value if result is not None else None


async def test_stdlib_layer_shows_signature_and_doc_comment(client):
    text = await hover_at(client, MLP, "Dense[784", 1)
    assert "layer Dense[In, Out, bias: bool = true](x: f32[*B, In]) -> f32[*B, Out]" in text
    assert "nn.Linear: y = x W^T + b" in text


async def test_stdlib_fn_shows_signature_and_doc_comment(client):
    text = await hover_at(client, MLP, "relu(fc1", 1)
    assert "fn relu(x: f32[*S]) -> f32[*S]" in text
    assert "max(x, 0) element-wise" in text


async def test_primitive_shows_registry_signature_and_doc(client):
    from mdl.primitives.surface import DOCS, SIGNATURES

    text = await hover_at(client, GPT, "arange(T)", 2)
    assert SIGNATURES["arange"] in text
    assert DOCS["arange"] in text


async def test_bindings_show_dtype_and_symbolic_shape(client):
    assert "let h: f32[B, 512]" in await hover_at(client, MLP, "h = nn.relu(fc1")
    assert "input x: f32[B, 784]" in await hover_at(client, MLP, "x: f32")
    assert "f32[B, 10]" in await hover_at(client, MLP, "fc3(h)", 3)  # `(` of the call
    assert "let fc3: layer instance `fc3` of `Dense[256, 10]`" in await hover_at(
        client, MLP, "fc3("
    )


async def test_layer_instances_and_loop_variables(client):
    text = await hover_at(client, GPT, "blk(x)", 1)
    assert "layer instance `blocks.0` of `GptBlock[256, 4]`" in text
    assert "Dense[256, 512, bias=false]" in await hover_at(client, GPT, "head(ln_f", 1)


async def test_expressions_show_their_type(client):
    # `+` of two embeddings: the binary expression's type
    assert "f32[B, 64, 256]" in await hover_at(client, GPT, "+ pos(")
    assert server_errors(client) == []


async def test_nothing_to_show_is_no_hover(client):
    assert await hover_at(client, MLP, "# examples", 3) is None
