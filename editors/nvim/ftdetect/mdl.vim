" .mdl files are mdl sources. `set filetype` rather than `setfiletype`, so that this wins
" over any other plugin's guess for the extension.
autocmd BufRead,BufNewFile *.mdl set filetype=mdl
