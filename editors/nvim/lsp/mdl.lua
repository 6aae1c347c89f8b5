-- Neovim 0.11+: the mdl server's configuration for vim.lsp.config, found by name on the
-- runtimepath. With editors/nvim on the runtimepath, `vim.lsp.enable('mdl')` is all it
-- takes; override fields with vim.lsp.config('mdl', { cmd = { '/path/to/mdl-lsp' } }).
return {
  cmd = { 'mdl-lsp' },
  filetypes = { 'mdl' },
  root_markers = { 'pyproject.toml', '.git' },
}
