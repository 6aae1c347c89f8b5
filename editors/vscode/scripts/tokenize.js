// .mdl files -> their TextMate tokens as JSON lines (one object per token: file, line, column,
// text, scopes; then per file {file, end}: the scopes still open after its last line), with the same engine VS Code uses (vscode-textmate + vscode-oniguruma).
// tests/editors reads this to check whole real files (examples/, stdlib/), which the
// hand-written assertions in test/*.test.mdl cannot cover line by line.
'use strict';

const fs = require('fs');
const path = require('path');
const vsctm = require('vscode-textmate');
const oniguruma = require('vscode-oniguruma');

const GRAMMAR = path.join(__dirname, '..', 'syntaxes', 'mdl.tmLanguage.json');

async function loadGrammar() {
  const wasm = fs.readFileSync(require.resolve('vscode-oniguruma/release/onig.wasm'));
  await oniguruma.loadWASM(wasm.buffer.slice(wasm.byteOffset, wasm.byteOffset + wasm.byteLength));
  const registry = new vsctm.Registry({
    onigLib: Promise.resolve({
      createOnigScanner: (patterns) => new oniguruma.OnigScanner(patterns),
      createOnigString: (text) => new oniguruma.OnigString(text),
    }),
    loadGrammar: async (scopeName) =>
      scopeName === 'source.mdl'
        ? vsctm.parseRawGrammar(fs.readFileSync(GRAMMAR, 'utf8'), GRAMMAR)
        : null,
  });
  return registry.loadGrammar('source.mdl');
}

async function main(files) {
  if (files.length === 0) {
    process.stderr.write('usage: node scripts/tokenize.js FILE.mdl...\n');
    process.exit(2);
  }
  const grammar = await loadGrammar();
  const out = [];
  for (const file of files) {
    const lines = fs.readFileSync(file, 'utf8').split(/\r?\n/);
    let state = vsctm.INITIAL;
    lines.forEach((line, index) => {
      const result = grammar.tokenizeLine(line, state);
      for (const token of result.tokens) {
        const text = line.slice(token.startIndex, token.endIndex);
        out.push(
          JSON.stringify({ file, line: index + 1, column: token.startIndex + 1, text, scopes: token.scopes }),
        );
      }
      state = result.ruleStack;
    });
    // The scopes still open after the last line: a region the grammar never closed.
    const after = grammar.tokenizeLine('', state).tokens[0];
    out.push(JSON.stringify({ file, end: after.scopes }));
  }
  process.stdout.write(out.join('\n') + '\n');
}

main(process.argv.slice(2)).catch((err) => {
  process.stderr.write(`${err.stack || err}\n`);
  process.exit(1);
});
