" mdl indentation: one level more after a line that leaves `{`, `(` or `[` open, one
" less for a line that starts by closing one. Comments and continuation lines follow
" the previous code line.
if exists('b:did_indent')
  finish
endif
let b:did_indent = 1

setlocal indentexpr=MdlIndent(v:lnum)
setlocal indentkeys=0},0],0),!^F,o,O
setlocal autoindent
let b:undo_indent = 'setlocal indentexpr< indentkeys< autoindent<'

if exists('*MdlIndent')
  finish
endif

" The brackets a line opens minus those it closes, comments excluded.
function! s:OpenBrackets(line) abort
  let code = substitute(a:line, '#.*$', '', '')
  let opened = len(substitute(code, '[^{(\[]', '', 'g'))
  let closed = len(substitute(code, '[^})\]]', '', 'g'))
  return opened - closed
endfunction

function! MdlIndent(lnum) abort
  let prev = prevnonblank(a:lnum - 1)
  while prev > 0 && getline(prev) =~# '^\s*#'
    let prev = prevnonblank(prev - 1)
  endwhile
  if prev == 0
    return 0
  endif
  let prevline = getline(prev)
  let ind = indent(prev)
  " A line that starts by closing was already dedented; what it opens counts after that.
  let leading_close = len(matchstr(prevline, '^\s*\zs[})\]]\+'))
  let net = s:OpenBrackets(prevline) + leading_close
  if net > 0
    let ind += shiftwidth()
  elseif net < 0
    let ind -= shiftwidth()
  endif
  if getline(a:lnum) =~# '^\s*[})\]]'
    let ind -= shiftwidth()
  endif
  return ind < 0 ? 0 : ind
endfunction
