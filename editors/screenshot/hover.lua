-- Inside the Neovim that take.sh starts: the LSP setup a user would have, then, once the
-- server's diagnostics are in, a hover on the `h` of `flat(h)` in line 20; writes $MDL_SHOT_READY when
-- the hover window is open so take.sh knows when to capture the screen.
vim.o.number = true
vim.o.signcolumn = 'yes'
vim.o.cursorline = true
vim.o.laststatus = 2
vim.o.ruler = true
vim.o.showmode = false
vim.cmd('highlight NormalFloat ctermbg=236 ctermfg=252')
vim.cmd('highlight FloatBorder ctermbg=236 ctermfg=244')
vim.cmd('highlight CursorLine cterm=NONE ctermbg=235')
vim.cmd('highlight LineNr ctermfg=242')
vim.cmd('highlight SignColumn ctermbg=NONE')
vim.diagnostic.config({
  virtual_text = {
    format = function(d)
      return ('%s: %s'):format(d.code, d.message)
    end,
  },
})
vim.lsp.handlers['textDocument/hover'] = vim.lsp.with(vim.lsp.handlers.hover, { border = 'rounded' })

require('mdl.lsp').setup({ cmd = { os.getenv('MDL_LSP_CMD') or 'mdl-lsp' } })

local target_line, target_word = 20, 'flat(h)'
local done = false
local function hover_when_ready()
  if done then
    return
  end
  if #vim.diagnostic.get(0, { severity = vim.diagnostic.severity.ERROR }) == 0 then
    return
  end
  done = true
  -- The model's header at the top leaves room for the hover below the cursor.
  vim.cmd('normal! 9Gzt')
  local line = vim.api.nvim_buf_get_lines(0, target_line - 1, target_line, false)[1]
  vim.api.nvim_win_set_cursor(0, { target_line, line:find(target_word, 1, true) + 4 })
  vim.lsp.buf.hover()
  local timer = vim.loop.new_timer()
  timer:start(50, 50, vim.schedule_wrap(function()
    for _, win in ipairs(vim.api.nvim_list_wins()) do
      if vim.api.nvim_win_get_config(win).relative ~= '' then
        timer:stop()
        vim.cmd('redraw')
        local f = assert(io.open(os.getenv('MDL_SHOT_READY'), 'w'))
        f:write('ready\n')
        f:close()
        return
      end
    end
  end))
end

vim.api.nvim_create_autocmd('DiagnosticChanged', { callback = hover_when_ready })
