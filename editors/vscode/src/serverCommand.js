// The `mdl.server.path` setting -> the executable to start, with no dependency on the
// vscode module so that node's own test runner can check it (test/serverCommand.test.js).
'use strict';

const fs = require('fs');
const os = require('os');
const path = require('path');

function isExecutableFile(file) {
  try {
    if (!fs.statSync(file).isFile()) {
      return false;
    }
    if (process.platform !== 'win32') {
      fs.accessSync(file, fs.constants.X_OK);
    }
    return true;
  } catch {
    return false;
  }
}

// Windows finds `mdl-lsp.exe` for `mdl-lsp`; elsewhere the name is the file.
function candidateNames(name, env) {
  if (process.platform !== 'win32' || path.extname(name) !== '') {
    return [name];
  }
  const exts = (env.PATHEXT || '.EXE;.CMD;.BAT').split(';').filter(Boolean);
  return [name, ...exts.map((ext) => name + ext.toLowerCase())];
}

function searchPath(name, env) {
  const dirs = (env.PATH || '').split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    for (const candidate of candidateNames(name, env)) {
      const file = path.join(dir, candidate);
      if (isExecutableFile(file)) {
        return file;
      }
    }
  }
  return undefined;
}

// Virtual environments a project typically keeps beside its sources; `pip install -e .`
// in one of them puts mdl-lsp there without putting it on VS Code's PATH.
const VENV_DIRS = ['.venv', 'venv'];

function searchVenvs(name, folders, env) {
  const binDir = process.platform === 'win32' ? 'Scripts' : 'bin';
  for (const folder of folders) {
    for (const venv of VENV_DIRS) {
      for (const candidate of candidateNames(name, env)) {
        const file = path.join(folder, venv, binDir, candidate);
        if (isExecutableFile(file)) {
          return file;
        }
      }
    }
  }
  return undefined;
}

/**
 * Resolve the configured server path.
 *
 * @param {string} configured the `mdl.server.path` setting (a bare name, or a path that may
 *   start with `~` or contain `${workspaceFolder}`; a relative path with a directory part is
 *   relative to the first workspace folder)
 * @param {string[]} folders the workspace folders' file-system paths, first one first
 * @param {NodeJS.ProcessEnv} env the environment whose PATH is searched
 * @returns {{command: string} | {error: string}}
 */
function resolveServerCommand(configured, folders, env) {
  let value = (configured || '').trim() || 'mdl-lsp';
  const root = folders.length > 0 ? folders[0] : undefined;
  if (value.includes('${workspaceFolder}')) {
    if (root === undefined) {
      return { error: `mdl.server.path "${value}" uses \${workspaceFolder} but no folder is open` };
    }
    value = value.split('${workspaceFolder}').join(root);
  }
  if (value === '~' || value.startsWith('~/') || value.startsWith('~\\')) {
    value = path.join(os.homedir(), value.slice(1));
  }
  const bareName = !value.includes('/') && !value.includes('\\');
  if (bareName) {
    const found = searchPath(value, env) || searchVenvs(value, folders, env);
    if (found === undefined) {
      return {
        error:
          `"${value}" was not found on PATH nor in a .venv of the workspace. ` +
          'Install the mdl package (pip install .) or set mdl.server.path to the mdl-lsp executable.',
      };
    }
    return { command: found };
  }
  if (!path.isAbsolute(value)) {
    if (root === undefined) {
      return { error: `mdl.server.path "${value}" is relative but no folder is open` };
    }
    value = path.join(root, value);
  }
  if (!isExecutableFile(value)) {
    return { error: `mdl.server.path "${value}" is not an executable file` };
  }
  return { command: value };
}

module.exports = { resolveServerCommand };
