"""Language server speed: edit -> diagnostics latency on a generated 1,000-line file.

Starts the real server (`python -m mdl_lsp`) over stdio with no debounce delay,
opens the ~1,000-line file of bench/frontend.py and makes single edits inside
one declaration (changing a constant, introducing and fixing an unknown name, in
declarations from the top to the bottom of the file). Each edit is timed from
sending `didChange` to the first `publishDiagnostics` of that version (the quick
check: the changed declaration parsed and checked, the rest reused) and to the
last (the full check of the file); the next edit waits for both. Prints a
markdown table (median, p95, max in milliseconds). Target from issue 4: p95 of
the first under 50 ms.
"""

from __future__ import annotations

import asyncio
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lsprotocol import types as lsp
from pygls.lsp.client import LanguageClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from frontend import cpu_name, thousand_line_file  # noqa: E402

EDITS = 60
WARMUP = 5


def edits_of(text: str, n: int) -> list[str]:
    """`n` versions of `text`, each differing from the original inside one declaration."""
    anchors = [i for i in range(len(text)) if text.startswith("let y = h * 0.5", i)]
    out = []
    for k in range(n):
        at = anchors[(k * 7) % len(anchors)]
        if k % 3 == 2:  # an error: an unknown name, reported with a did-you-mean
            new = "let y = hh * 0.5"
        else:
            new = f"let y = h * 0.{k % 9 + 1}"
        out.append(text[:at] + new + text[at + len("let y = h * 0.5") :])
    return out


async def measure(path: Path) -> tuple[list[float], list[float]]:
    """(first diagnostics, full-check diagnostics) latencies in seconds, one pair per edit."""
    client = LanguageClient("mdl-lsp-bench", "1")
    published: dict[int, list[float]] = {}
    first: dict[int, asyncio.Future] = {}

    @client.feature(lsp.TEXT_DOCUMENT_PUBLISH_DIAGNOSTICS)
    def on_diagnostics(params: lsp.PublishDiagnosticsParams) -> None:
        published.setdefault(params.version, []).append(time.perf_counter())
        fut = first.get(params.version)
        if fut is not None and not fut.done():
            fut.set_result(None)

    await client.start_io(sys.executable, "-m", "mdl_lsp")
    await client.initialize_async(
        lsp.InitializeParams(
            capabilities=lsp.ClientCapabilities(),
            root_uri=path.parent.as_uri(),
            initialization_options={"debounceMs": 0},
        )
    )
    client.initialized(lsp.InitializedParams())
    uri = path.as_uri()
    doc = lsp.TextDocumentIdentifier(uri=uri)
    text = path.read_text()
    loop = asyncio.get_running_loop()
    first[1] = loop.create_future()
    client.text_document_did_open(
        lsp.DidOpenTextDocumentParams(
            text_document=lsp.TextDocumentItem(uri=uri, language_id="mdl", version=1, text=text)
        )
    )
    await asyncio.wait_for(first[1], 60)
    quick, full = [], []
    for version, new_text in enumerate(edits_of(text, EDITS + WARMUP), start=2):
        first[version] = loop.create_future()
        sent = time.perf_counter()
        client.text_document_did_change(
            lsp.DidChangeTextDocumentParams(
                text_document=lsp.VersionedTextDocumentIdentifier(uri=uri, version=version),
                content_changes=[lsp.TextDocumentContentChangeWholeDocument(text=new_text)],
            )
        )
        await asyncio.wait_for(first[version], 60)
        # a request is answered from the full check of this version, which is published first
        await client.text_document_document_symbol_async(
            lsp.DocumentSymbolParams(text_document=doc)
        )
        if version > WARMUP + 1:
            quick.append(published[version][0] - sent)
            full.append(published[version][-1] - sent)
    await client.shutdown_async(None)
    client.exit(None)
    await client.stop()
    return quick, full


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round(q * (len(xs) - 1)))]


def main() -> None:
    import os
    import time

    start_load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = thousand_line_file(Path(tmp))
        lines = path.read_text().count("\n")
        quick, full = asyncio.run(measure(path))
    out = [
        "# Language server speed",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} cores; 1-minute load average {start_load:.2f} "
        f"at the start, {os.getloadavg()[0]:.2f} at the end. Made by `python bench/lsp.py` on "
        f"{time.strftime('%Y-%m-%d')}.",
        "",
        f"`mdl-lsp` over stdio: an edit inside one declaration of a {lines}-line file, then the "
        f"time until diagnostics are published, {len(quick)} edits, debounce off. The server "
        "publishes twice per edit: first the changed declarations checked alone (the rest "
        "reused), then the full check. Target: under 50 ms p95.",
        "",
        "| didChange -> publishDiagnostics (no debounce) | median ms | p95 ms | max ms |",
        "|---|---:|---:|---:|",
    ]
    for name, times in (("first: changed declaration checked", quick), ("full check", full)):
        ms = [t * 1000 for t in times]
        out.append(
            f"| {name} | {statistics.median(ms):.1f} | {percentile(ms, 0.95):.1f} | {max(ms):.1f} |"
        )
    text = "\n".join(out) + "\n"
    print(text)
    results = Path(__file__).resolve().parent / "results"
    results.mkdir(exist_ok=True)
    (results / "lsp.md").write_text(text)


if __name__ == "__main__":
    main()
