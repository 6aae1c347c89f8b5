// node --test: src/extension.js with the real vscode-languageclient and the real mdl-lsp
// (MDL_LSP: its path), in a fake VS Code (fakeVscode.js). The client must start the
// configured server, show its diagnostics for an open document, answer a hover through
// the server, restart on command, and report a server path that does not exist.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const test = require('node:test');

const { installFakeVscode, CancellationTokenSource, Position } = require('./fakeVscode');

const SERVER = process.env.MDL_LSP;
const ROOT = path.resolve(__dirname, '..', '..', '..');
const DIGITS = path.join(ROOT, 'examples', 'digits.mdl');
const LIMIT_MS = 30000;

// Resolves when `check()` holds after a diagnostics update; rejects after LIMIT_MS.
function diagnosticsWhere(state, check) {
  return new Promise((resolve, reject) => {
    if (check()) {
      resolve();
      return;
    }
    const timer = setTimeout(() => reject(new Error('no such diagnostics from the server')), LIMIT_MS);
    const listener = state.diagnosticsSet.event(() => {
      if (check()) {
        clearTimeout(timer);
        listener.dispose();
        resolve();
      }
    });
  });
}

test('the extension runs mdl-lsp for .mdl documents', { skip: !SERVER && 'set MDL_LSP to mdl-lsp' }, async () => {
  // digits.mdl with fc2 expecting 31 inputs where fc1 gives 32: an E0314 in `return`.
  const text = fs.readFileSync(DIGITS, 'utf8').replace('nn.Dense[32, 10]', 'nn.Dense[31, 10]');
  const settings = { 'server.path': SERVER, 'server.args': [] };
  const { state, document } = installFakeVscode({ settings, folder: ROOT, document: { path: DIGITS, text } });
  const extension = require('../src/extension');
  await extension.activate({ subscriptions: [] });
  assert.deepEqual(state.errors, []);

  const uri = document.uri.toString();
  await diagnosticsWhere(state, () => (state.diagnostics.get(uri) || []).length > 0);
  const [error] = state.diagnostics.get(uri);
  assert.equal(error.code, 'E0314');
  assert.equal(error.severity, 0); // DiagnosticSeverity.Error
  assert.equal(error.range.start.line, 10);
  assert.match(error.message, /expected 31, got 32/);

  assert.equal(state.hoverProviders.length, 1);
  const line = text.split('\n')[10];
  const hover = await state.hoverProviders[0].provideHover(document, new Position(10, line.indexOf('fc1(x)') + 4), new CancellationTokenSource().token);
  assert.match(hover.contents.map((c) => c.value).join('\n'), /f32\[B, 64\]/);

  // A restart starts a second server, which publishes the diagnostics again.
  state.diagnostics.clear();
  await state.commands.get('mdl.restartServer')();
  await diagnosticsWhere(state, () => (state.diagnostics.get(uri) || []).length > 0);
  assert.equal(state.output.filter((line) => line.startsWith('starting ')).length, 2);

  // A server path that does not exist is reported, not thrown.
  settings['server.path'] = path.join(ROOT, 'no-such-dir', 'mdl-lsp');
  await state.commands.get('mdl.restartServer')();
  assert.equal(state.errors.length, 1);
  assert.match(state.errors[0], /no-such-dir.*is not an executable file/);

  await extension.deactivate();
});
