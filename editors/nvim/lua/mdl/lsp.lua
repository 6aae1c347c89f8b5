-- mdl language server setup for Neovim 0.7 and later: starts `mdl-lsp` (stdio) for
-- buffers of filetype mdl, one server per project root, and attaches them to it.
--
--   require('mdl.lsp').setup()                      -- mdl-lsp from PATH
--   require('mdl.lsp').setup({ cmd = { '/path/to/.venv/bin/mdl-lsp' } })
--
-- On Neovim 0.11+ the built-in form needs no plugin code: see editors/nvim/lsp/mdl.lua
-- and docs/editors.md.
local M = {}

M.defaults = {
  cmd = { 'mdl-lsp' },
  -- The first directory upwards that holds one of these is the workspace root.
  root_markers = { 'pyproject.toml', '.git' },
  -- Buffer-local K (hover), gd (definition), gr (references), <leader>rn (rename),
  -- <leader>ca (code action). false: set none and use your own on_attach.
  keymaps = true,
  on_attach = nil, -- function(client, bufnr), called after the keymaps are set
  capabilities = nil, -- default: vim.lsp.protocol.make_client_capabilities()
}

local options = vim.deepcopy(M.defaults)
local client_by_root = {} -- root directory -> client id (Neovim < 0.8 only)

local function find_root(path, markers)
  local dir = path ~= '' and vim.fn.fnamemodify(path, ':p:h') or vim.fn.getcwd()
  local start = dir
  while true do
    for _, marker in ipairs(markers) do
      if vim.loop.fs_stat(dir .. '/' .. marker) then
        return dir
      end
    end
    local parent = vim.fn.fnamemodify(dir, ':h')
    if parent == dir then
      return start
    end
    dir = parent
  end
end

local function set_keymaps(bufnr)
  local function map(lhs, rhs, desc)
    vim.keymap.set('n', lhs, rhs, { buffer = bufnr, silent = true, desc = desc })
  end
  map('K', vim.lsp.buf.hover, 'mdl: hover')
  map('gd', vim.lsp.buf.definition, 'mdl: go to definition')
  map('gr', vim.lsp.buf.references, 'mdl: references')
  map('<leader>rn', vim.lsp.buf.rename, 'mdl: rename')
  map('<leader>ca', vim.lsp.buf.code_action, 'mdl: code action')
end

local function on_attach(client, bufnr)
  if options.keymaps then
    set_keymaps(bufnr)
  end
  if options.on_attach then
    options.on_attach(client, bufnr)
  end
end

local function client_config(root)
  return {
    name = 'mdl',
    cmd = options.cmd,
    root_dir = root,
    workspace_folders = { { uri = vim.uri_from_fname(root), name = root } },
    capabilities = options.capabilities or vim.lsp.protocol.make_client_capabilities(),
    on_attach = on_attach,
  }
end

--- Start (or reuse) the server for the buffer's project and attach the buffer to it.
function M.attach(bufnr)
  bufnr = (bufnr == nil or bufnr == 0) and vim.api.nvim_get_current_buf() or bufnr
  if vim.fn.executable(options.cmd[1]) ~= 1 then
    vim.notify(
      ('mdl: %s is not executable; install the mdl package (pip install .) or pass '
        .. "cmd = { '/path/to/mdl-lsp' } to require('mdl.lsp').setup()"):format(options.cmd[1]),
      vim.log.levels.ERROR
    )
    return nil
  end
  local root = find_root(vim.api.nvim_buf_get_name(bufnr), options.root_markers)
  if vim.lsp.start then
    -- 0.8+: vim.lsp.start reuses a running client with the same name and root.
    return vim.lsp.start(client_config(root), { bufnr = bufnr })
  end
  local id = client_by_root[root]
  local client = id and vim.lsp.get_client_by_id(id)
  if client == nil or client.is_stopped() then
    id = vim.lsp.start_client(client_config(root))
    if id == nil then
      vim.notify('mdl: could not start ' .. table.concat(options.cmd, ' '), vim.log.levels.ERROR)
      return nil
    end
    client_by_root[root] = id
  end
  vim.lsp.buf_attach_client(bufnr, id)
  return id
end

--- Configure, then attach every mdl buffer, open now or later.
function M.setup(opts)
  options = vim.tbl_deep_extend('force', vim.deepcopy(M.defaults), opts or {})
  local group = vim.api.nvim_create_augroup('mdl_lsp', { clear = true })
  vim.api.nvim_create_autocmd('FileType', {
    group = group,
    pattern = 'mdl',
    callback = function(args)
      M.attach(args.buf)
    end,
  })
  for _, bufnr in ipairs(vim.api.nvim_list_bufs()) do
    if vim.api.nvim_buf_is_loaded(bufnr) and vim.bo[bufnr].filetype == 'mdl' then
      M.attach(bufnr)
    end
  end
end

return M
