// The VS Code side of mdl: starts `mdl-lsp` (setting `mdl.server.path`) over stdio for
// .mdl files and restarts it when its settings change. Everything the editor shows beyond
// highlighting (diagnostics, hover, completion, ...) comes from the server.
'use strict';

const vscode = require('vscode');
const { LanguageClient, RevealOutputChannelOn } = require('vscode-languageclient/node');
const { resolveServerCommand } = require('./serverCommand');

const CLIENT_ID = 'mdl'; // also makes vscode-languageclient honour `mdl.trace.server`

/** @type {LanguageClient | undefined} */
let client;
/** @type {vscode.OutputChannel | undefined} */
let outputChannel;

function workspaceFolderPaths() {
  return (vscode.workspace.workspaceFolders || [])
    .filter((folder) => folder.uri.scheme === 'file')
    .map((folder) => folder.uri.fsPath);
}

async function reportMissingServer(message) {
  outputChannel.appendLine(message);
  const choice = await vscode.window.showErrorMessage(`mdl: ${message}`, 'Open Settings');
  if (choice === 'Open Settings') {
    await vscode.commands.executeCommand('workbench.action.openSettings', 'mdl.server');
  }
}

async function startClient() {
  const config = vscode.workspace.getConfiguration('mdl');
  const resolved = resolveServerCommand(
    config.get('server.path', 'mdl-lsp'),
    workspaceFolderPaths(),
    process.env,
  );
  if ('error' in resolved) {
    // Not awaited: the message stays up until the user answers, activation must not wait.
    reportMissingServer(resolved.error).catch(() => {});
    return;
  }
  const folders = workspaceFolderPaths();
  const args = config.get('server.args', []);
  const serverOptions = {
    command: resolved.command,
    args: Array.isArray(args) ? args.map(String) : [],
    // The server resolves `import` relative to the file; the cwd only matters for its logs.
    options: { cwd: folders.length > 0 ? folders[0] : undefined },
  };
  const clientOptions = {
    documentSelector: [
      { scheme: 'file', language: 'mdl' },
      { scheme: 'untitled', language: 'mdl' },
    ],
    outputChannel,
    revealOutputChannelOn: RevealOutputChannelOn.Never,
  };
  outputChannel.appendLine(`starting ${resolved.command} ${serverOptions.args.join(' ')}`.trim());
  client = new LanguageClient(CLIENT_ID, 'mdl language server', serverOptions, clientOptions);
  try {
    await client.start();
  } catch (err) {
    outputChannel.appendLine(`mdl-lsp failed to start: ${err}`);
    client = undefined;
  }
}

async function stopClient() {
  const running = client;
  client = undefined;
  if (running !== undefined) {
    try {
      await running.stop();
    } catch (err) {
      outputChannel.appendLine(`stopping mdl-lsp: ${err}`);
    }
  }
}

// Restarts run one after another, so that quick setting changes cannot interleave a stop
// and a start and leave two servers running.
let restarting = Promise.resolve();
function restartClient() {
  restarting = restarting
    .then(async () => {
      await stopClient();
      await startClient();
    })
    .catch((err) => outputChannel.appendLine(`restarting mdl-lsp: ${err}`));
  return restarting;
}

/** @param {vscode.ExtensionContext} context */
async function activate(context) {
  outputChannel = vscode.window.createOutputChannel('mdl');
  context.subscriptions.push(
    outputChannel,
    vscode.commands.registerCommand('mdl.restartServer', restartClient),
    vscode.workspace.onDidChangeConfiguration((event) => {
      if (event.affectsConfiguration('mdl.server')) {
        restartClient();
      }
    }),
  );
  await startClient();
}

function deactivate() {
  return stopClient();
}

module.exports = { activate, deactivate };
