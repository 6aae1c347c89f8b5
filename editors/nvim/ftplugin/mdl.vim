" mdl buffer options: `#` comments, 4-space indentation as in the standard library.
if exists('b:did_ftplugin')
  finish
endif
let b:did_ftplugin = 1

setlocal commentstring=#\ %s
setlocal comments=:#
setlocal expandtab shiftwidth=4 softtabstop=4 tabstop=4
" `(`, `)`, `[` and `]` are not part of words; `_` is.
setlocal iskeyword=@,48-57,_
setlocal formatoptions-=t formatoptions+=croql

let b:undo_ftplugin = 'setlocal commentstring< comments< expandtab< shiftwidth< softtabstop< tabstop< iskeyword< formatoptions<'
