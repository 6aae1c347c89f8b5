"""mdl language server (package `mdl_lsp`)."""
