#!/usr/bin/env node
// Builds dist/wasm/core.cov.wasm: the WASM core with a counter on every
// branch outcome, for the fuzzer (tools/fuzz/). The release core is not
// touched. The counters are added to an in-memory copy of the AssemblyScript
// source, located with the TypeScript parser so that each one maps back to a
// file, line and column; the copy is compiled with the release target's own
// options from asconfig.json, and that map is written to
// dist/wasm/core.cov.json.
//
// Counters (u32 each) sit in one static region of the core's memory, below
// every region layout.ts hands out, so a packet slot can never overlap them.
// The shell reads the whole region once per batch (exports __covBase and
// __covEdges) instead of paying a JS call per branch.
//
// What gets a counter ("edge"):
//   entry    each function body (inlined functions included, by source place)
//   true     a condition leaf evaluated to true   (if, while, do, for, ?:,
//   false    ...and to false                        and each operand of && / ||)
//   case     each switch clause
//   default  a switch's default, including the implicit one when none is written
// `while (true)` and other literal conditions get none: one outcome is impossible.
// Nor do top-level initializers, which run once and may need to stay constant.
import { readFileSync, writeFileSync, readdirSync, mkdirSync } from 'node:fs';
import { join, dirname, resolve, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import asc from 'assemblyscript/asc';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const sourceDir = join(root, 'assembly');
const outFile = join(root, 'dist', 'wasm', 'core.cov.wasm');
const mapFile = join(root, 'dist', 'wasm', 'core.cov.json');
// The instrumented copy, kept only so a person can read what was compiled.
const copyDir = join(root, 'dist', 'wasm', 'core.cov.src');
const helperName = '__cov';

/** Every edge found, in id order: { id, file, line, column, function, kind, text }. */
const edges = [];

function snippet(node, sf) {
  const text = node.getText(sf).replace(/\s+/g, ' ');
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function addEdge(sf, file, node, fn, kind, text) {
  const { line, character } = sf.getLineAndCharacterOfPosition(node.getStart(sf));
  const id = edges.length;
  edges.push({ id, file, line: line + 1, column: character + 1, function: fn, kind, text });
  return id;
}

function isLiteralCondition(e) {
  return e.kind === ts.SyntaxKind.TrueKeyword || e.kind === ts.SyntaxKind.FalseKeyword || ts.isNumericLiteral(e);
}

function isLogical(node) {
  return ts.isBinaryExpression(node)
    && (node.operatorToken.kind === ts.SyntaxKind.AmpersandAmpersandToken || node.operatorToken.kind === ts.SyntaxKind.BarBarToken);
}

/** The operands a condition is made of: through parentheses, `!`, `&&` and `||`. */
function conditionLeaves(e, out = []) {
  if (ts.isParenthesizedExpression(e)) return conditionLeaves(e.expression, out);
  if (ts.isPrefixUnaryExpression(e) && e.operator === ts.SyntaxKind.ExclamationToken) return conditionLeaves(e.operand, out);
  if (isLogical(e)) {
    conditionLeaves(e.left, out);
    conditionLeaves(e.right, out);
    return out;
  }
  if (!isLiteralCondition(e)) out.push(e);
  return out;
}

function functionName(node) {
  if (node.name && ts.isIdentifier(node.name)) return node.name.text;
  return '(anonymous)';
}

function isFunction(node) {
  return (ts.isFunctionDeclaration(node) || ts.isMethodDeclaration(node) || ts.isFunctionExpression(node)
    || ts.isArrowFunction(node) || ts.isConstructorDeclaration(node)) && node.body !== undefined;
}

/**
 * The counters of one source file, as insertions into its text: each wrap
 * opens at a node's start and closes at its end. Records the edges as it
 * finds them.
 */
class FileCounters {
  inserts = [];
  /** Which helpers the inserted text calls. */
  usesCov = false;
  usesCovb = false;
  #wrapped = new Set();

  constructor(sf, file) {
    this.sf = sf;
    this.file = file;
  }

  #open(pos, str, span) { this.inserts.push({ pos, str, close: false, span }); }
  #close(pos, str, span) { this.inserts.push({ pos, str, close: true, span }); }

  /** `fn` is the enclosing function's name; undefined at top level, where nothing is counted. */
  visit(node, fn) {
    if (isFunction(node)) {
      fn = functionName(node);
      if (ts.isBlock(node.body)) this.#countEntry(node, fn);
    }
    if (fn !== undefined) {
      if (ts.isIfStatement(node) || ts.isWhileStatement(node) || ts.isDoStatement(node)) this.#wrapCondition(node.expression, fn);
      else if (ts.isForStatement(node) && node.condition) this.#wrapCondition(node.condition, fn);
      else if (ts.isConditionalExpression(node)) this.#wrapCondition(node.condition, fn);
      else if (isLogical(node)) this.#wrapCondition(node, fn);
      else if (ts.isSwitchStatement(node)) this.#countSwitch(node, fn);
    }
    ts.forEachChild(node, (child) => this.visit(child, fn));
  }

  #countEntry(node, fn) {
    const id = addEdge(this.sf, this.file, node, fn, 'entry', fn);
    this.#open(node.body.getStart(this.sf) + 1, ` ${helperName}(${id});`, 0);
    this.usesCov = true;
  }

  #wrapCondition(e, fn) {
    const { sf, file } = this;
    for (const leaf of conditionLeaves(e)) {
      if (this.#wrapped.has(leaf)) continue;
      this.#wrapped.add(leaf);
      const text = snippet(leaf, sf);
      const falseId = addEdge(sf, file, leaf, fn, 'false', text);
      addEdge(sf, file, leaf, fn, 'true', text);
      const start = leaf.getStart(sf);
      const span = leaf.end - start;
      this.#open(start, `${helperName}b(${falseId}, `, span);
      this.#close(leaf.end, ')', span);
      this.usesCovb = true;
    }
  }

  #countSwitch(node, fn) {
    const { sf, file } = this;
    let hasDefault = false;
    for (const clause of node.caseBlock.clauses) {
      const isDefault = ts.isDefaultClause(clause);
      hasDefault ||= isDefault;
      const id = addEdge(sf, file, clause, fn, isDefault ? 'default' : 'case', isDefault ? 'default' : `case ${snippet(clause.expression, sf)}`);
      this.#open(clause.statements.pos, ` ${helperName}(${id});`, 0);
    }
    if (!hasDefault) {
      // Placed first and ending in `break`, so no clause can fall into it;
      // a default clause is chosen only when no case matches, wherever it sits.
      const id = addEdge(sf, file, node, fn, 'default', '(no default: no case matched)');
      this.#open(node.caseBlock.getStart(sf) + 1, ` default: { ${helperName}(${id}); break; }`, 0);
    }
    this.usesCov = true;
  }
}

/**
 * `text` with the insertions made. Edits are insertions only, so nested wraps
 * must be ordered: at one position, closes come before opens, outer opens
 * before inner ones, inner closes before outer ones.
 */
function applyInserts(text, inserts) {
  const sorted = [...inserts].sort((a, b) => a.pos - b.pos
    || (a.close === b.close ? 0 : a.close ? -1 : 1)
    || (a.close ? a.span - b.span : b.span - a.span));
  let out = '';
  let at = 0;
  for (const ins of sorted) {
    out += text.slice(at, ins.pos) + ins.str;
    at = ins.pos;
  }
  return out + text.slice(at);
}

/** Imports the helpers the counters call, on the first line before what is there (a comment), so line numbers stay those of the source. */
function withHelperImport(text, counters) {
  const names = [counters.usesCov && helperName, counters.usesCovb && `${helperName}b`].filter(Boolean);
  return names.length > 0 ? `import { ${names.join(', ')} } from "./${helperName}"; ${text}` : text;
}

/** Returns the instrumented text of one source file and records its edges. */
function instrument(file, text) {
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const counters = new FileCounters(sf, file);
  counters.visit(sf, undefined);
  return withHelperImport(applyInserts(text, counters.inserts), counters);
}

function helperModule(count) {
  return `// Generated by scripts/coverage.mjs for the coverage build only.
const base: usize = memory.data(${Math.max(count, 1) * 4}, 16);

// @ts-ignore: decorator
@inline export function ${helperName}(id: u32): void {
  const p = base + (<usize>id << 2);
  store<u32>(p, load<u32>(p) + 1);
}

/** Counts condition leaf \`id\` (false) or \`id + 1\` (true) and passes its value through. */
// @ts-ignore: decorator
@inline export function ${helperName}b<T>(id: u32, c: T): T {
  ${helperName}(c ? id + 1 : id);
  return c;
}

export function __covBase(): usize { return base; }
export function __covEdges(): u32 { return ${count}; }
`;
}

/** The release target's options from asconfig.json, as asc arguments. */
function releaseArgs() {
  const config = JSON.parse(readFileSync(join(root, 'asconfig.json'), 'utf8'));
  const opts = { ...config.options, ...config.targets.release };
  delete opts.outFile;
  delete opts.textFile;
  const args = [];
  for (const [key, value] of Object.entries(opts)) {
    if (value === true) args.push(`--${key}`);
    else if (value === false) continue;
    else args.push(`--${key}`, String(value));
  }
  return args;
}

async function main() {
  const files = new Map();
  for (const name of readdirSync(sourceDir).filter((n) => n.endsWith('.ts')).sort()) {
    const path = join(sourceDir, name);
    const rel = relative(root, path);
    let text = instrument(rel, readFileSync(path, 'utf8'));
    if (name === 'index.ts') text += `\nexport { __covBase, __covEdges } from "./${helperName}";\n`;
    files.set(path, text);
  }
  files.set(join(sourceDir, `${helperName}.ts`), helperModule(edges.length));

  mkdirSync(dirname(outFile), { recursive: true });
  const { error, stderr } = await asc.main([
    relative(root, join(sourceDir, 'index.ts')), ...releaseArgs(), '--outFile', relative(root, outFile), '--baseDir', root,
  ], {
    readFile(filename, baseDir) {
      const path = resolve(baseDir, filename);
      if (files.has(path)) return files.get(path);
      // asc would apply asconfig.json's release target on its own, outFile and
      // textFile included, overwriting the release build's files: the options
      // were already taken from it above.
      if (path === join(root, 'asconfig.json')) return null;
      try { return readFileSync(path, 'utf8'); } catch { return null; }
    },
  });
  if (error) {
    process.stderr.write(stderr.toString());
    throw Object.assign(new Error(`coverage build failed: ${error.message}`), { code: 'ERR_L3DSR_COVERAGE_BUILD' });
  }
  writeFileSync(mapFile, JSON.stringify({ edges }, null, 1) + '\n');
  mkdirSync(copyDir, { recursive: true });
  for (const [path, text] of files) writeFileSync(join(copyDir, relative(sourceDir, path)), text);
  const branches = edges.filter((e) => e.kind !== 'entry').length;
  process.stderr.write(`coverage: ${edges.length} edges (${branches} branch outcomes) -> ${relative(root, outFile)}\n`);
}

await main();
