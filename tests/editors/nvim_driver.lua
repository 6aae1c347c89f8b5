-- Headless Neovim as a user of editors/nvim: opens an .mdl file, waits for mdl-lsp's
-- diagnostics, asks for a hover, makes an edit that breaks the file and waits for the
-- error. Writes what it saw as JSON to $MDL_NVIM_OUT, then quits; test_nvim.py checks it.
--
-- Environment: MDL_NVIM_MODE ('plugin': require('mdl.lsp').setup, works on 0.7+;
-- 'config': vim.lsp.enable with editors/nvim/lsp/mdl.lua, 0.11+; 'inline': the whole
-- configuration in init.lua, as docs/editors.md shows it, 0.11+), MDL_LSP_CMD (the server),
-- MDL_NVIM_FILE (the file), MDL_NVIM_OUT (the report), MDL_NVIM_TIMEOUT_MS.
-- Waiting is vim.wait on a condition, never a fixed sleep.
local mode = os.getenv('MDL_NVIM_MODE')
local cmd = os.getenv('MDL_LSP_CMD')
local file = os.getenv('MDL_NVIM_FILE')
local out_path = os.getenv('MDL_NVIM_OUT')
local timeout = tonumber(os.getenv('MDL_NVIM_TIMEOUT_MS') or '20000')

local report = { mode = mode, version = tostring(vim.version().major) .. '.' .. tostring(vim.version().minor) }

local function write_report()
  local f = assert(io.open(out_path, 'w'))
  f:write(vim.fn.json_encode(report))
  f:close()
end

-- Every publishDiagnostics the client receives, in order, with its diagnostics count.
local published = {}
local original_handler = vim.lsp.handlers['textDocument/publishDiagnostics']
vim.lsp.handlers['textDocument/publishDiagnostics'] = function(err, result, ctx, config)
  table.insert(published, { uri = result.uri, count = #result.diagnostics, version = result.version })
  return original_handler(err, result, ctx, config)
end

local function clients_of(bufnr)
  if vim.lsp.get_clients then
    return vim.lsp.get_clients({ bufnr = bufnr, name = 'mdl' })
  end
  local found = {}
  for _, client in pairs(vim.lsp.buf_get_clients(bufnr)) do
    if client.name == 'mdl' then
      table.insert(found, client)
    end
  end
  return found
end

local function publications_for(uri)
  local n = 0
  for _, p in ipairs(published) do
    if p.uri == uri then
      n = n + 1
    end
  end
  return n
end

-- 0-based line and character of the first `needle` (plus `shift`) in the buffer.
local function position_of(bufnr, needle, shift)
  for i, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    local col = line:find(needle, 1, true)
    if col then
      return { line = i - 1, character = col - 1 + (shift or 0) }
    end
  end
  error('not in the file: ' .. needle)
end

local function hover_text(result)
  local contents = result and result.contents
  if contents == nil then
    return nil
  end
  if type(contents) == 'string' then
    return contents
  end
  if contents.value then
    return contents.value
  end
  local parts = {}
  for _, c in ipairs(contents) do
    table.insert(parts, type(c) == 'string' and c or c.value)
  end
  return table.concat(parts, '\n')
end

local function run()
  if mode == 'config' then
    vim.lsp.config('mdl', { cmd = { cmd } })
    vim.lsp.enable('mdl')
  elseif mode == 'inline' then
    vim.filetype.add({ extension = { mdl = 'mdl' } })
    vim.lsp.config('mdl', {
      cmd = { cmd },
      filetypes = { 'mdl' },
      root_markers = { 'pyproject.toml', '.git' },
    })
    vim.lsp.enable('mdl')
  else
    require('mdl.lsp').setup({ cmd = { cmd } })
  end
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  local uri = vim.uri_from_bufnr(bufnr)
  report.filetype = vim.bo[bufnr].filetype

  report.attached = vim.wait(timeout, function()
    return #clients_of(bufnr) > 0
  end, 10)
  if not report.attached then
    return
  end
  report.opened_diagnostics = vim.wait(timeout, function()
    return publications_for(uri) > 0
  end, 10)
  report.errors_on_open = #vim.diagnostic.get(bufnr, { severity = vim.diagnostic.severity.ERROR })

  -- Hover on the `x` of `fc1(x)`: a binding whose type the checker knows.
  local pos = position_of(bufnr, 'fc1(x)', 4)
  local params = { textDocument = { uri = uri }, position = pos }
  local responses = vim.lsp.buf_request_sync(bufnr, 'textDocument/hover', params, timeout) or {}
  for _, response in pairs(responses) do
    report.hover = hover_text(response.result)
    report.hover_error = response.err and response.err.message or nil
  end

  -- Break the file: fc2 now expects 31 inputs where fc1 gives 32.
  local edit = position_of(bufnr, 'nn.Dense[32, 10]', 9)
  vim.api.nvim_buf_set_text(bufnr, edit.line, edit.character, edit.line, edit.character + 2, { '31' })
  report.broken_diagnostics = vim.wait(timeout, function()
    return #vim.diagnostic.get(bufnr, { severity = vim.diagnostic.severity.ERROR }) > 0
  end, 10)
  report.diagnostics = {}
  for _, d in ipairs(vim.diagnostic.get(bufnr)) do
    table.insert(report.diagnostics, {
      lnum = d.lnum,
      col = d.col,
      severity = d.severity,
      message = d.message,
      code = d.code or (d.user_data and d.user_data.lsp and d.user_data.lsp.code),
      source = d.source,
    })
  end
  report.publications = #published
end

local ok, err = pcall(run)
if not ok then
  report.error = tostring(err)
end
write_report()
vim.cmd('qall!')
