"""Error code -> its explanation: the markdown of `errors/<CODE>.md` (`mdlc explain E0302`).

The files ship inside the package, so they are read with importlib.resources;
when the package data is not reachable that way (an unusual loader), the file
beside this module in the source tree is read instead. `normalize_code` turns
what a user types ("e302", "0302") into a registry code.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

from .codes import CODES
from .diagnostics import Diagnostic

_CODE_TEXT = re.compile(r"[Ee]?0*(\d{1,4})")


def normalize_code(text: str) -> str | None:
    """`"e302"`, `"E0302"`, `"0302"` -> `"E0302"`; None when no such code exists."""
    match = _CODE_TEXT.fullmatch(text.strip())
    if match is None:
        return None
    code = f"E{int(match.group(1)):04d}"
    return code if code in CODES else None


def explanation(code: str) -> str | None:
    """The markdown explanation of `code` (any form `normalize_code` accepts), or None."""
    normalized = normalize_code(code)
    if normalized is None:
        return None
    name = f"{normalized}.md"
    try:
        resource = resources.files("mdl").joinpath("errors").joinpath(name)
        if resource.is_file():
            return resource.read_text(encoding="utf-8")
    except (ModuleNotFoundError, OSError):
        pass
    fallback = Path(__file__).resolve().parent / "errors" / name
    try:
        return fallback.read_text(encoding="utf-8")
    except OSError:
        return None


def unknown_code_diagnostic(text: str) -> Diagnostic:
    """E0703 for `mdlc explain` with a code that is not in the registry."""
    return Diagnostic(
        "E0703",
        f"no error code `{text.strip()}`",
        help="codes look like `E0302`; `docs/errors/README.md` lists them all",
    )
