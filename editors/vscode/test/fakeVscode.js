// Just enough of the `vscode` module for src/extension.js and vscode-languageclient to run in
// plain node: settings, one open document, an output channel, and the hooks the client
// registers its features with (diagnostics collections, hover providers), which the test
// then reads and calls. Anything not modelled here is an inert stand-in that accepts every
// call, so the client's registrations for other features do nothing.
'use strict';

const Module = require('module');

function inert(name) {
  return new Proxy(function () {}, {
    get(target, prop) {
      if (prop === 'then') {
        return undefined; // not a promise
      }
      if (prop === Symbol.toPrimitive || prop === 'toString') {
        return () => `<${name}>`;
      }
      return inert(`${name}.${String(prop)}`);
    },
    apply: () => inert(`${name}()`),
    construct: () => inert(`new ${name}`),
  });
}

class EventEmitter {
  constructor() {
    this.listeners = [];
    this.event = (listener, thisArg) => {
      const bound = listener.bind(thisArg);
      this.listeners.push(bound);
      return { dispose: () => (this.listeners = this.listeners.filter((l) => l !== bound)) };
    };
  }
  fire(value) {
    this.listeners.forEach((l) => l(value));
  }
  dispose() {
    this.listeners = [];
  }
}

class Disposable {
  constructor(onDispose) {
    this.onDispose = onDispose;
  }
  static from(...items) {
    return new Disposable(() => items.forEach((d) => d && d.dispose && d.dispose()));
  }
  dispose() {
    if (this.onDispose) {
      this.onDispose();
    }
  }
}

class CancellationTokenSource {
  constructor() {
    const cancelled = new EventEmitter();
    this.token = { isCancellationRequested: false, onCancellationRequested: cancelled.event };
    this.cancelled = cancelled;
  }
  cancel() {
    this.token.isCancellationRequested = true;
    this.cancelled.fire();
  }
  dispose() {}
}

class Uri {
  constructor(scheme, fsPath) {
    Object.assign(this, { scheme, fsPath, path: fsPath, authority: '', query: '', fragment: '' });
  }
  static file(fsPath) {
    return new Uri('file', fsPath);
  }
  static parse(text) {
    const scheme = text.slice(0, text.indexOf(':'));
    return new Uri(scheme, decodeURIComponent(text.slice(scheme.length + 1).replace(/^\/\//, '')));
  }
  with() {
    return this;
  }
  toString() {
    return `${this.scheme}://${encodeURI(this.fsPath)}`;
  }
  toJSON() {
    return this.toString();
  }
}

class Position {
  constructor(line, character) {
    Object.assign(this, { line, character });
  }
}

class Range {
  constructor(a, b, c, d) {
    const numbers = typeof a === 'number';
    this.start = numbers ? new Position(a, b) : a;
    this.end = numbers ? new Position(c, d) : b;
  }
}

class Diagnostic {
  constructor(range, message, severity) {
    Object.assign(this, { range, message, severity });
  }
}

class MarkdownString {
  constructor(value = '') {
    this.value = value;
  }
  appendMarkdown(text) {
    this.value += text;
    return this;
  }
  appendText(text) {
    this.value += text;
    return this;
  }
  appendCodeblock(code, language = '') {
    this.value += `\n\`\`\`${language}\n${code}\n\`\`\`\n`;
    return this;
  }
}

class Hover {
  constructor(contents, range) {
    this.contents = Array.isArray(contents) ? contents : [contents];
    this.range = range;
  }
}

/**
 * Install the fake as the module `vscode` for everything required afterwards.
 * @param {{settings: object, folder: string, document: {path: string, text: string}}} setup
 */
function installFakeVscode({ settings, folder, document }) {
  const state = {
    output: [],
    errors: [],
    diagnostics: new Map(), // uri -> the Diagnostic[] the client set last
    diagnosticsSet: new EventEmitter(),
    hoverProviders: [],
    commands: new Map(),
  };
  const doc = {
    uri: Uri.file(document.path),
    fileName: document.path,
    languageId: 'mdl',
    version: 1,
    isClosed: false,
    isDirty: false,
    isUntitled: false,
    getText: () => document.text,
  };
  const configuration = {
    get: (key, fallback) => (key in settings ? settings[key] : fallback),
    has: (key) => key in settings,
    inspect: () => undefined,
    update: async () => {},
  };
  const events = new Proxy({}, { get: (cache, name) => (cache[name] ||= new EventEmitter()) });
  const base = inert('vscode');

  const workspace = {
    getConfiguration: () => configuration,
    workspaceFolders: [{ uri: Uri.file(folder), name: 'workspace', index: 0 }],
    textDocuments: [doc],
    name: 'workspace',
    rootPath: folder,
    onDidOpenTextDocument: events.didOpen.event,
    onDidChangeTextDocument: events.didChange.event,
    onDidCloseTextDocument: events.didClose.event,
    onDidSaveTextDocument: events.didSave.event,
    onDidChangeConfiguration: events.configuration.event,
    onDidChangeWorkspaceFolders: events.folders.event,
  };
  const window = {
    createOutputChannel: (name) => ({
      name,
      append: (text) => state.output.push(text),
      appendLine: (text) => state.output.push(`${text}\n`),
      replace() {},
      clear() {},
      show() {},
      hide() {},
      dispose() {},
    }),
    showErrorMessage: async (message) => {
      state.errors.push(message);
      return undefined;
    },
    activeTextEditor: undefined,
    visibleTextEditors: [],
  };
  const languages = {
    match: (selector, candidate) => {
      const selectors = Array.isArray(selector) ? selector : [selector];
      return selectors.some(
        (s) => s.language === candidate.languageId && (!s.scheme || s.scheme === candidate.uri.scheme),
      )
        ? 10
        : 0;
    },
    createDiagnosticCollection: () => ({
      set: (uri, diagnostics) => {
        state.diagnostics.set(uri.toString(), diagnostics || []);
        state.diagnosticsSet.fire(uri.toString());
      },
      delete: (uri) => state.diagnostics.delete(uri.toString()),
      clear: () => state.diagnostics.clear(),
      forEach() {},
      get: (uri) => state.diagnostics.get(uri.toString()),
      has: (uri) => state.diagnostics.has(uri.toString()),
      dispose() {},
    }),
    registerHoverProvider: (selector, provider) => {
      state.hoverProviders.push(provider);
      return new Disposable();
    },
  };
  const commands = {
    registerCommand: (id, handler) => {
      state.commands.set(id, handler);
      return new Disposable(() => state.commands.delete(id));
    },
    executeCommand: async () => undefined,
  };
  const env = { appName: 'fake-vscode', language: 'en', machineId: 'm', sessionId: 's', uiKind: 1, appRoot: folder };
  const real = {
    version: '1.90.0',
    env,
    workspace: new Proxy(workspace, { get: (t, p) => (p in t ? t[p] : base.workspace[p]) }),
    window: new Proxy(window, { get: (t, p) => (p in t ? t[p] : base.window[p]) }),
    languages: new Proxy(languages, { get: (t, p) => (p in t ? t[p] : base.languages[p]) }),
    commands: new Proxy(commands, { get: (t, p) => (p in t ? t[p] : base.commands[p]) }),
    EventEmitter,
    Disposable,
    CancellationTokenSource,
    Uri,
    Position,
    Range,
    Diagnostic,
    DiagnosticSeverity: { Error: 0, Warning: 1, Information: 2, Hint: 3 },
    MarkdownString,
    Hover,
  };
  const vscode = new Proxy(real, { get: (t, p) => (p in t ? t[p] : base[p]) });

  const load = Module._load;
  Module._load = function (request, ...rest) {
    return request === 'vscode' ? vscode : load.call(this, request, ...rest);
  };
  return { state, document: doc };
}

module.exports = { installFakeVscode, CancellationTokenSource, Position };
