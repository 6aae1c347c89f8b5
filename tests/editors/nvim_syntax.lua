-- Headless Neovim with editors/nvim on the runtimepath: for each file in $MDL_NVIM_FILES
-- (one per line), the filetype, the syntax group of every word and number, and the lines
-- that `gg=G` (the indent script) would change. Writes JSON to $MDL_NVIM_OUT.
local files = vim.split(os.getenv('MDL_NVIM_FILES'), '\n', { trimempty = true })
local report = {}

local function words_of(lnum, line)
  local found = {}
  for start, word in line:gmatch('()([%w_%.]+)') do
    -- Split `nn.relu` and `0..L` into their parts but keep `1.0e-5` whole.
    local pos = start
    for piece in (word:match('^%d') and word:gsub('%.%.', ' ') or word:gsub('%.', ' ')):gmatch('%S+') do
      local col = line:find(piece, pos, true)
      table.insert(found, {
        line = lnum,
        col = col,
        word = piece,
        group = vim.fn.synIDattr(vim.fn.synID(lnum, col, 1), 'name'),
      })
      pos = col + #piece
    end
  end
  return found
end

local function check(file)
  vim.cmd('edit ' .. vim.fn.fnameescape(file))
  local bufnr = vim.api.nvim_get_current_buf()
  local lines = vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)
  local result = { file = file, filetype = vim.bo.filetype, commentstring = vim.bo.commentstring, words = {} }
  for lnum, line in ipairs(lines) do
    for _, w in ipairs(words_of(lnum, line)) do
      table.insert(result.words, w)
    end
  end
  vim.cmd('silent normal! gg=G')
  result.reindented = {}
  for lnum, line in ipairs(vim.api.nvim_buf_get_lines(bufnr, 0, -1, false)) do
    if line ~= lines[lnum] then
      table.insert(result.reindented, { line = lnum, before = lines[lnum], after = line })
    end
  end
  vim.cmd('bwipeout!')
  return result
end

for _, file in ipairs(files) do
  local ok, result = pcall(check, file)
  table.insert(report, ok and result or { file = file, error = tostring(result) })
end
local f = assert(io.open(os.getenv('MDL_NVIM_OUT'), 'w'))
f:write(vim.fn.json_encode(report))
f:close()
vim.cmd('qall!')
