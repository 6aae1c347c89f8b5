"""Robustness: every line prefix of every example and stdlib file, with every request at the
cursor, gives no server error and no internal-error diagnostic (E09xx); the server never
imports llvmlite (it runs with an llvmlite that ends the process when imported).

The `fuzz` test tries character prefixes and random single-character edits: under
`make fuzz` (MDL_FUZZ_EXAMPLES set) every character prefix and 1,000 edits per file,
in the ordinary suite a seeded sample of 25 of each.
"""

from __future__ import annotations

import asyncio
import os
import random
import sys
from pathlib import Path

import pytest
import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient

from mdl.resolve import stdlib_dir

from .conftest import ROOT, _client, change_doc, open_doc, server_errors, wait_published

pytestmark = pytest.mark.asyncio(loop_scope="module")

FILES = sorted((ROOT / "examples").glob("*.mdl")) + sorted((stdlib_dir()).glob("*.mdl"))
FULL_FUZZ = "MDL_FUZZ_EXAMPLES" in os.environ
SAMPLE = 25
POISON = Path(__file__).resolve().parent / "no_llvmlite"
ENV = dict(os.environ, PYTHONPATH=os.pathsep.join([str(POISON), os.environ.get("PYTHONPATH", "")]))


@pytest_lsp.fixture(
    config=ClientServerConfig(
        server_command=[sys.executable, "-m", "mdl_lsp"], client_factory=_client, server_env=ENV
    ),
    scope="module",
)
async def client(lsp_client: LanguageClient):
    params = lsp.InitializeParams(
        capabilities=lsp.ClientCapabilities(),
        root_uri=ROOT.as_uri(),
        initialization_options={"debounceMs": 0},
    )
    await lsp_client.initialize_session(params)
    yield
    await lsp_client.shutdown_session()


async def test_the_poisoned_llvmlite_really_ends_a_process():
    import subprocess

    done = subprocess.run([sys.executable, "-c", "import llvmlite"], env=ENV)
    assert done.returncode == 86


async def every_request(client: LanguageClient, uri: str, text: str) -> None:
    """Every kind of request at the end of `text` and in its middle; none may fail."""
    doc = lsp.TextDocumentIdentifier(uri=uri)
    lines = text.split("\n")
    end = lsp.Position(line=len(lines) - 1, character=len(lines[-1].encode("utf-16-le")) // 2)
    mid_line = len(lines) // 2
    mid = lsp.Position(line=mid_line, character=len(lines[mid_line]) // 2)
    whole = lsp.Range(start=lsp.Position(line=0, character=0), end=end)
    requests = [
        client.text_document_document_symbol_async(lsp.DocumentSymbolParams(text_document=doc))
    ]
    requests.append(
        client.text_document_semantic_tokens_full_async(lsp.SemanticTokensParams(text_document=doc))
    )
    requests.append(
        client.text_document_inlay_hint_async(lsp.InlayHintParams(text_document=doc, range=whole))
    )
    requests.append(
        client.text_document_formatting_async(
            lsp.DocumentFormattingParams(
                text_document=doc, options=lsp.FormattingOptions(tab_size=4, insert_spaces=True)
            )
        )
    )
    requests.append(
        client.text_document_code_action_async(
            lsp.CodeActionParams(
                text_document=doc, range=whole, context=lsp.CodeActionContext(diagnostics=[])
            )
        )
    )
    for pos in (end, mid):
        requests += [
            client.text_document_hover_async(lsp.HoverParams(text_document=doc, position=pos)),
            client.text_document_completion_async(
                lsp.CompletionParams(text_document=doc, position=pos)
            ),
            client.text_document_signature_help_async(
                lsp.SignatureHelpParams(text_document=doc, position=pos)
            ),
            client.text_document_definition_async(
                lsp.DefinitionParams(text_document=doc, position=pos)
            ),
            client.text_document_prepare_rename_async(
                lsp.PrepareRenameParams(text_document=doc, position=pos)
            ),
        ]
    await asyncio.gather(*requests)


async def check_versions(client: LanguageClient, path: Path, texts, with_requests: bool) -> None:
    uri = open_doc(client, path.parent / f"_prefix_{path.name}", "")
    for text in texts:
        version = change_doc(client, uri, text)
        published = await wait_published(client, uri, version)
        internal = [d for d in published.diagnostics if str(d.code).startswith("E09")]
        assert not internal, (path.name, text[-200:], internal)
        if with_requests:
            await every_request(client, uri, text)
    assert server_errors(client) == []


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
async def test_every_line_prefix(client, path):
    text = path.read_text()
    cuts = [i + 1 for i, ch in enumerate(text) if ch == "\n"] + [len(text)]
    await check_versions(client, path, [text[:c] for c in cuts], with_requests=True)


@pytest.mark.fuzz
@pytest.mark.parametrize("path", FILES, ids=lambda p: p.name)
async def test_every_character_prefix_and_random_edits(client, path):
    text = path.read_text()
    rng = random.Random(f"mdl-lsp-{path.name}")
    cuts = list(range(len(text) + 1))
    if not FULL_FUZZ:
        cuts = sorted(rng.sample(cuts, SAMPLE))
    await check_versions(client, path, [text[:c] for c in cuts], with_requests=False)
    alphabet = "abcxyzBDN_0123456789 \n\t()[]{}.,:=+-*/@<>#!é😀"
    edits = []
    for _ in range(1000 if FULL_FUZZ else SAMPLE):
        i = rng.randrange(len(text) + 1)
        match rng.randrange(3):
            case 0:
                edits.append(text[:i] + rng.choice(alphabet) + text[i:])
            case 1:
                edits.append(text[:i] + text[i + 1 :])
            case _:
                edits.append(text[:i] + rng.choice(alphabet) + text[i + 1 :])
    await check_versions(client, path, edits, with_requests=False)
    await every_request(
        client, open_doc(client, path.parent / f"_edit_{path.name}", edits[-1]), edits[-1]
    )
