// The project owns its documents: code, tests, benches and build scripts
// cite them by their path in the repository (docs/semantics.md), never a
// note outside it or a path that exists on one machine only; and every
// relative link in README.md and docs/*.md leads to a file of the
// repository. Runs as any user, on the files alone.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The checkout: this file runs as dist/test/references.test.js. */
const root = fileURLToPath(new URL('../../', import.meta.url));
const CODE_DIRS = ['src', 'tools', 'test', 'bench', 'assembly', 'scripts', 'native'];

// Written with escapes (and described without them), so that this file
// does not cite them itself.
const MACHINE_PATHS: readonly [RegExp, string][] = [
  [/\.\.\/shared\b/, 'a note outside the repository (the shared notes)'],
  [/\/work\//, 'a path of the development machine'],
  [/\/root\//, "root's home directory"],
  [/\/home\//, 'a home directory'],
  [/\/usr\/bin\/python/, 'an absolute python path (use PYTHON from test/support/python.ts: python3 on the PATH)'],
  // `#!/usr/bin/env node` is how a script finds node on the PATH.
  [/\/usr\/(?:local\/)?s?bin\/(?!env\b|python)/, 'an absolute program path (find the program on the PATH)'],
];
/** A document named in code: `docs/lab.md`, `native/README.md`, `README.md`. */
const DOCUMENT_NAME = /(?:\.\.?\/)*[A-Za-z0-9_][A-Za-z0-9_./-]*\.md\b/g;
/** Inline links `[text](target "title")` and reference definitions `[id]: target`. */
const MARKDOWN_LINKS = [/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g, /^\s{0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s|$)/gm];
/** A link with a scheme (https:, mailto:) leaves the repository: not ours to check. */
const URL_SCHEME = /^[a-z][a-z0-9+.-]*:/i;

/** Files git tracks under the code directories; every file there when this is not a git checkout. */
function codeFiles(): string[] {
  try {
    return execFileSync('git', ['ls-files', '-z', '--', ...CODE_DIRS], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] })
      .split('\0').filter((f) => f !== '');
  } catch {
    const walk = (dir: string): string[] => readdirSync(join(root, dir), { withFileTypes: true })
      .flatMap((e) => (e.isDirectory() ? walk(join(dir, e.name)) : e.isFile() ? [join(dir, e.name)] : []));
    return CODE_DIRS.filter((d) => existsSync(join(root, d))).flatMap(walk);
  }
}

/** Text files only: the fuzz corpus holds raw packets. */
function readText(file: string): string | undefined {
  const bytes = readFileSync(join(root, file));
  return bytes.includes(0) ? undefined : bytes.toString('utf8');
}

const lineOf = (text: string, index: number): number => text.slice(0, index).split('\n').length;

/** Whether `target`, taken relative to `base`, is a file or directory inside the checkout. */
function insideRepository(base: string, target: string): boolean {
  const path = resolve(base, target);
  const rel = relative(root, path);
  return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel) && existsSync(path);
}

/** The anchors GitHub gives the headings of a Markdown text (headings inside code blocks are none). */
function anchorsOf(text: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  let fenced = false;
  for (const line of text.split('\n')) {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    const heading = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const slug = heading[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    anchors.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return anchors;
}

function documents(): string[] {
  const docs = existsSync(join(root, 'docs')) ? readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`) : [];
  return ['README.md', ...docs];
}

describe('references to documents and paths', () => {
  it('code, tests, benches and scripts cite no note outside the repository and no path of one machine', () => {
    const found: string[] = [];
    for (const file of codeFiles()) {
      const text = readText(file);
      if (text === undefined) continue;
      for (const [pattern, what] of MACHINE_PATHS) {
        const global = new RegExp(pattern.source, 'g');
        for (const m of text.matchAll(global)) found.push(`${file}:${lineOf(text, m.index!)}: ${what}`);
      }
    }
    assert.deepEqual(found, []);
  });

  it('every document code names is in the repository, by its path from the root (docs/lab.md)', () => {
    const missing: string[] = [];
    for (const file of codeFiles()) {
      const text = readText(file);
      if (text === undefined) continue;
      for (const m of text.matchAll(DOCUMENT_NAME)) {
        const name = m[0];
        // Part of a URL or of an absolute path (the test above reports those).
        if (m.index! > 0 && '/:'.includes(text[m.index! - 1]!)) continue;
        if (!insideRepository(root, name) && !insideRepository(join(root, dirname(file)), name)) {
          missing.push(`${file}:${lineOf(text, m.index!)}: ${name}`);
        }
      }
    }
    assert.deepEqual(missing, []);
  });

  it('every relative link in README.md and docs/*.md resolves to a file in the repository, and its #anchor to a heading', () => {
    const broken: string[] = [];
    let links = 0;
    for (const doc of documents()) {
      const text = readFileSync(join(root, doc), 'utf8');
      for (const pattern of MARKDOWN_LINKS) {
        for (const m of text.matchAll(pattern)) {
          const target = m[1]!;
          if (URL_SCHEME.test(target)) continue;
          links++;
          const at = `${doc}:${lineOf(text, m.index!)}: ${target}`;
          const hash = target.indexOf('#');
          const path = decodeURIComponent(hash < 0 ? target : target.slice(0, hash));
          let file = doc;
          if (path !== '') {
            if (isAbsolute(path)) { broken.push(`${at} is absolute (write it relative to ${doc})`); continue; }
            if (!insideRepository(join(root, dirname(doc)), path)) { broken.push(`${at} does not resolve`); continue; }
            file = relative(root, resolve(root, dirname(doc), path));
          }
          const anchor = hash < 0 ? undefined : decodeURIComponent(target.slice(hash + 1));
          if (anchor !== undefined && file.endsWith('.md') && !anchorsOf(readFileSync(join(root, file), 'utf8')).has(anchor)) {
            broken.push(`${at}: ${file} has no heading with that anchor`);
          }
        }
      }
    }
    assert.deepEqual(broken, []);
    // The README links the documents; a pattern that finds nothing would prove nothing.
    assert.ok(links > 0, 'no relative link found in README.md or docs/*.md');
  });
});
