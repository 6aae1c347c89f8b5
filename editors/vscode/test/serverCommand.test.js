// node --test: how the `mdl.server.path` setting becomes the command the client starts.
'use strict';

const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const test = require('node:test');

const { resolveServerCommand } = require('../src/serverCommand');

const EXE = process.platform === 'win32' ? 'mdl-lsp.cmd' : 'mdl-lsp';

function tempDir() {
  return fs.mkdtempSync(path.join(os.tmpdir(), 'mdl-vscode-'));
}

function makeExecutable(file) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, '#!/bin/sh\n');
  fs.chmodSync(file, 0o755);
  return file;
}

test('a bare name is looked up on PATH', () => {
  const bin = tempDir();
  const exe = makeExecutable(path.join(bin, EXE));
  const result = resolveServerCommand('mdl-lsp', [], { PATH: ['/nonexistent', bin].join(path.delimiter) });
  assert.deepEqual(result, { command: exe });
});

test('an empty setting means mdl-lsp', () => {
  const bin = tempDir();
  const exe = makeExecutable(path.join(bin, EXE));
  assert.deepEqual(resolveServerCommand('  ', [], { PATH: bin }), { command: exe });
});

test('a bare name missing from PATH falls back to the workspace .venv', () => {
  const root = tempDir();
  const exe = makeExecutable(path.join(root, '.venv', process.platform === 'win32' ? 'Scripts' : 'bin', EXE));
  assert.deepEqual(resolveServerCommand('mdl-lsp', [root], { PATH: '' }), { command: exe });
});

test('a bare name found nowhere is an error that says what to do', () => {
  const result = resolveServerCommand('mdl-lsp', [tempDir()], { PATH: tempDir() });
  assert.match(result.error, /not found on PATH/);
  assert.match(result.error, /mdl\.server\.path/);
});

test('a relative path is relative to the first workspace folder', () => {
  const root = tempDir();
  const exe = makeExecutable(path.join(root, 'env', 'bin', 'mdl-lsp'));
  assert.deepEqual(resolveServerCommand('env/bin/mdl-lsp', [root, tempDir()], {}), { command: exe });
});

test('${workspaceFolder} is replaced by the first workspace folder', () => {
  const root = tempDir();
  const exe = makeExecutable(path.join(root, 'tools', 'mdl-lsp'));
  assert.deepEqual(resolveServerCommand('${workspaceFolder}/tools/mdl-lsp', [root], {}), { command: exe });
  assert.match(resolveServerCommand('${workspaceFolder}/tools/mdl-lsp', [], {}).error, /no folder is open/);
});

test('~ is the home directory', () => {
  const result = resolveServerCommand('~/surely-not-here/mdl-lsp', [], {});
  assert.equal(result.error, `mdl.server.path "${path.join(os.homedir(), 'surely-not-here', 'mdl-lsp')}" is not an executable file`);
});

test('an absolute path must be an executable file', { skip: process.platform === 'win32' }, () => {
  const dir = tempDir();
  const plain = path.join(dir, 'mdl-lsp');
  fs.writeFileSync(plain, '');
  fs.chmodSync(plain, 0o644);
  assert.match(resolveServerCommand(plain, [], {}).error, /not an executable file/);
  assert.match(resolveServerCommand(dir, [], {}).error, /not an executable file/);
  fs.chmodSync(plain, 0o755);
  assert.deepEqual(resolveServerCommand(plain, [], {}), { command: plain });
});
