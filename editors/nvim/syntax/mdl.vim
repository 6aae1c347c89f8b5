" Vim syntax file for mdl, the model language (docs/language.md, section 2).
" The word lists are checked against the compiler's by tests/editors/test_consistency.py.
if exists('b:current_syntax')
  finish
endif

let s:cpo_save = &cpo
set cpo&vim

syn case match
syn iskeyword @,48-57,_

" Hard keywords: never identifiers.
syn keyword mdlConditional if else
syn keyword mdlRepeat for in
syn keyword mdlStatement return
syn keyword mdlInclude import
syn keyword mdlLet let
syn keyword mdlLogical and or not
syn keyword mdlBoolean true false

" Soft keywords: keywords only where the grammar expects them.
syn match mdlDeclaration /^\%(fn\|layer\|model\)\ze[ \t]/ nextgroup=mdlDeclName skipwhite
syn match mdlDeclName /\h\w*/ contained
syn match mdlInclude /^\s*from\ze[ \t]/
syn match mdlInclude /\%(\<import\s\+\h[A-Za-z0-9_.]*\s\+\)\@<=as\>/
syn match mdlParamDecl /\%(^\s*\|{\s*\)\@<=\%(param\|buffer\)\ze\s\+\h/

" Predefined names (shadowable, so not keywords of the grammar).
syn keyword mdlConstant inf nan pi None
syn keyword mdlType f16 bf16 f32 f64 i32 i64 bool
syn keyword mdlBuiltin Sequential
syn keyword mdlBuiltin abs arange argmax argmin avg_pool cast ceil concat conv cos erf exp
syn keyword mdlBuiltin expand floor full gather isnan log logical_and logical_not logical_or
syn keyword mdlBuiltin matmul max max_pool mean min neg pad pow prod reshape rsqrt sigmoid
syn keyword mdlBuiltin sin split sqrt stack sum tanh transpose where
" Initialisers only after the `=` of a param or buffer declaration.
syn match mdlInitializer /\%(=\s*\)\@<=\<\%(full\|glorot_normal\|glorot_uniform\|kaiming_normal\|kaiming_uniform\|normal\|ones\|torch_default_bias\|torch_linear_bias\|trunc_normal\|uniform\|xavier_normal\|xavier_uniform\|zeros\)\>/

" Numbers: `_` separators, digits on both sides of a dot (so `0..L` is a range).
syn match mdlNumber /\<\d[0-9_]*\>/
syn match mdlFloat /\<\d[0-9_]*\.\d[0-9_]*\%([eE][+-]\=\d\+\)\=\>/
syn match mdlFloat /\<\d[0-9_]*[eE][+-]\=\d\+\>/

syn match mdlOperator /->\|\.\.\.\=\|\*\*\|\/\/\|[-+*\/%@]\|[=!<>]=\|[<>=]/
syn match mdlContinuation /\\\ze\s*$/

" Strings do not exist: a quote or other stray character is E0003.
syn match mdlError /["'`$?;~&|^]/
syn match mdlError /![^=]/me=s+1

syn keyword mdlTodo TODO FIXME XXX NOTE contained
syn match mdlComment /#.*$/ contains=mdlTodo,@Spell

hi def link mdlConditional Conditional
hi def link mdlRepeat Repeat
hi def link mdlStatement Statement
hi def link mdlInclude Include
hi def link mdlLet Keyword
hi def link mdlLogical Operator
hi def link mdlBoolean Boolean
hi def link mdlDeclaration Keyword
hi def link mdlDeclName Function
hi def link mdlParamDecl StorageClass
hi def link mdlConstant Constant
hi def link mdlType Type
hi def link mdlBuiltin Function
hi def link mdlInitializer Function
hi def link mdlNumber Number
hi def link mdlFloat Float
hi def link mdlOperator Operator
hi def link mdlContinuation Special
hi def link mdlError Error
hi def link mdlTodo Todo
hi def link mdlComment Comment

let b:current_syntax = 'mdl'

let &cpo = s:cpo_save
unlet s:cpo_save
