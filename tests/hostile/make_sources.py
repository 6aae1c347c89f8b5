"""Writes the generated hostile sources (big, binary or oddly encoded) into sources/.

Run `python tests/hostile/make_sources.py`; the output is deterministic, so the
files can be checked in and regenerated at will. Each entry's expected code
lives in GENERATED (the test reads it), because a binary file cannot carry a
`# expect:` line. Hand-written cases are plain .mdl files in sources/.
"""

from __future__ import annotations

import random
from pathlib import Path

SOURCES = Path(__file__).parent / "sources"
OK_MODEL = b"model M(x: f32[B]) -> f32[B] { return x }\n"
FN_HEAD = b"fn f(x: f32[N]) -> f32[N] = "


def _deep_layers(n: int) -> bytes:
    """A chain of n layers, each instantiating the previous one."""
    lines = [b"layer L0(x: f32[B, 4]) -> f32[B, 4] { x }"]
    for i in range(1, n):
        lines.append(
            f"layer L{i}(x: f32[B, 4]) -> f32[B, 4] {{\n    let inner = L{i - 1}\n"
            f"    return inner(x)\n}}".encode()
        )
    lines.append(
        f"model M(x: f32[B, 4]) -> f32[B, 4] {{\n    let top = L{n - 1}\n"
        f"    return top(x)\n}}".encode()
    )
    return b"\n".join(lines) + b"\n"


def _garbage(seed: int, size: int) -> bytes:
    rng = random.Random(seed)
    # 0xff never occurs in UTF-8, so the file is certainly not valid UTF-8.
    return b"\xff" + bytes(rng.randrange(256) for _ in range(size))


def _else_if_chain(n: int) -> bytes:
    arms = b"".join(f" else if k == {i} {{ x }}".encode() for i in range(n))
    return b"fn f[k](x: f32[N]) -> f32[N] = if k == 0 { x }" + arms + b" else { x }\n"


# name -> (expected code, or None for "no error", bytes)
GENERATED: dict[str, tuple[str | None, bytes]] = {
    "gen_binary_garbage": ("E0001", _garbage(1, 4096)),
    "gen_elf_header": ("E0001", b"\x7fELF\x02\x01\x01\x00" + _garbage(2, 512)),
    "gen_bad_utf8_in_comment": ("E0001", b"# caf\xe9\n" + OK_MODEL),
    "gen_truncated_utf8": ("E0001", OK_MODEL + b"# \xe2\x82"),
    "gen_overlong_utf8": ("E0001", b"# \xc0\xaf\n" + OK_MODEL),
    "gen_utf16": ("E0001", "\ufeff".encode("utf-16-le") + OK_MODEL.decode().encode("utf-16-le")),
    "gen_nul_byte": ("E0002", OK_MODEL.replace(b"return", b"ret\x00urn")),
    "gen_all_nul": ("E0002", b"\x00" * 1000),
    "gen_cr_only_lines": ("E0003", b"fn f(x: f32[N]) -> f32[N] {\r    let y = x\r    y\r}\r"),
    "gen_1e5_parens": ("E0006", FN_HEAD + b"(" * 100_000 + b"x" + b")" * 100_000 + b"\n"),
    "gen_1e5_open_brackets": ("E0006", FN_HEAD + b"[" * 100_000 + b"\n"),
    "gen_deep_braces": ("E0006", FN_HEAD + b"if true { " * 300 + b"x" + b" } else { x }" * 300),
    "gen_1e4_minus_chain": ("E0006", FN_HEAD + b"-" * 10_000 + b"x\n"),
    "gen_1e3_else_if_chain": ("E0006", _else_if_chain(1_000)),
    "gen_long_identifier": ("E0101", b"model M(x: f32[B]) -> f32[B] { return " + b"a" * 100_000 + b" }\n"),
    "gen_many_fns": (None, b"".join(f"fn f{i}(x: f32[N]) -> f32[N] = x\n".encode() for i in range(2000)) + OK_MODEL),
    "gen_deep_layer_nesting": ("E0408", _deep_layers(400)),
    "gen_moderate_layer_nesting": (None, _deep_layers(20)),
}  # fmt: skip


def main() -> None:
    SOURCES.mkdir(exist_ok=True)
    for name, (_, data) in GENERATED.items():
        (SOURCES / f"{name}.mdl").write_bytes(data)
    total = sum(p.stat().st_size for p in SOURCES.iterdir())
    assert total < 2_000_000, f"sources/ is {total} bytes; keep it under 2 MB"
    print(f"wrote {len(GENERATED)} files; sources/ holds {total} bytes")


if __name__ == "__main__":
    main()
