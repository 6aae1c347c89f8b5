"""`python -m mdl_lsp`: the same as the `mdl-lsp` command."""

from .server import main

main()
