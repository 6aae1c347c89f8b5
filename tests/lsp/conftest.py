"""The real server over stdio, driven by pytest-lsp as an editor would drive it.

`published` records every publishDiagnostics (pytest-lsp keeps only the last
per file), so tests can wait for the diagnostics of one document version and
check which versions were published at all; `errors` are the server's logged
internal errors. Waiting is on notifications, never on sleeps.
"""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest_lsp
from lsprotocol import types as lsp
from pytest_lsp import ClientServerConfig, LanguageClient
from pytest_lsp.client import DEFAULT_CLIENT_FEATURES, register_lsp_features
from pytest_lsp.protocol import LanguageClientProtocol

ROOT = Path(__file__).resolve().parents[2]
TIMEOUT = 60.0


def _client() -> LanguageClient:
    from pygls.protocol import default_converter

    client = LanguageClient(
        converter_factory=default_converter, protocol_cls=LanguageClientProtocol
    )
    client.published = []  # every PublishDiagnosticsParams, in order
    client.waiters = []
    features = dict(DEFAULT_CLIENT_FEATURES)

    def publish(c: LanguageClient, params: lsp.PublishDiagnosticsParams) -> None:
        c.diagnostics[params.uri] = params.diagnostics
        c.published.append(params)
        for fut in c.waiters:
            if not fut.done():
                fut.set_result(None)
        c.waiters.clear()

    features[lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS] = publish
    register_lsp_features(client, features)
    return client


CONFIG = ClientServerConfig(
    server_command=[sys.executable, "-m", "mdl_lsp"], client_factory=_client
)


def make_client_fixture(debounce_ms: int = 0, scope: str = "module"):
    @pytest_lsp.fixture(config=CONFIG, scope=scope)
    async def client(lsp_client: LanguageClient):
        params = lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(),
            root_uri=ROOT.as_uri(),
            workspace_folders=[lsp.WorkspaceFolder(uri=(ROOT / "examples").as_uri(), name="ex")],
            initialization_options={"debounceMs": debounce_ms},
        )
        await lsp_client.initialize_session(params)
        yield
        await lsp_client.shutdown_session()

    return client


async def wait_published(client: LanguageClient, uri: str, version: int | None = None):
    """The diagnostics published for `uri` (at `version`, if given), waiting for them."""

    async def loop():
        while True:
            for p in reversed(client.published):
                if p.uri == uri and (version is None or p.version == version):
                    return p
            fut = asyncio.get_running_loop().create_future()
            client.waiters.append(fut)
            await fut

    return await asyncio.wait_for(loop(), TIMEOUT)


_versions: dict[str, int] = {}


def open_doc(client: LanguageClient, path: Path, text: str | None = None) -> str:
    uri = path.resolve().as_uri()
    _versions[uri] = 1
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(
                uri=uri,
                language_id="mdl",
                version=1,
                text=path.read_text() if text is None else text,
            )
        )
    )
    return uri


def change_doc(client: LanguageClient, uri: str, text: str) -> int:
    """Replace the whole text; returns the new version."""
    _versions[uri] = _versions.get(uri, 1) + 1
    client.text_document_did_change(
        lsp.DidChangeTextDocumentParams(
            text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=_versions[uri]),
            content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=text)],
        )
    )
    return _versions[uri]


def close_doc(client: LanguageClient, uri: str) -> None:
    client.text_document_did_close(
        lsp.DidCloseTextDocumentParams(text_document=lsp.TextDocumentIdentifier(uri=uri))
    )


def server_errors(client: LanguageClient) -> list[str]:
    return [m.message for m in client.log_messages if m.type == lsp.MessageType.Error]


def position_of(text: str, needle: str, delta: int = 0) -> lsp.Position:
    """The LSP position (UTF-16) of the first `needle` in `text`, plus `delta` characters."""
    offset = text.index(needle) + delta
    line = text.count("\n", 0, offset)
    col_text = text[text.rfind("\n", 0, offset) + 1 : offset]
    units = len(col_text.encode("utf-16-le")) // 2
    return lsp.Position(line=line, character=units)
