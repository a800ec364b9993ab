// What `npm pack` ships and where the docs say it goes. The tarball must
// hold every file the installed l3dsr loads (followed from bin/l3dsr.js
// through every relative import, worker and the install script) and nothing
// else of the tree: no tests, benches, fuzzer or source maps. The systemd
// unit must start the l3dsr the README's install step puts in place.
// scripts/pack-check.sh installs the real tarball; this is the quick look.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, copyFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('../../', import.meta.url));
const read = (path: string) => readFileSync(join(root, path), 'utf8');

function packedFiles(): Set<string> {
  const r = spawnSync('npm', ['pack', '--dry-run', '--json', '--ignore-scripts'], { cwd: root, encoding: 'utf8', timeout: 60_000 });
  assert.equal(r.status, 0, `npm pack --dry-run: ${r.stderr}`);
  const [pack] = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  return new Set(pack.files.map((f) => f.path));
}

/** Relative module specifiers of a compiled file: imports (static, bare and dynamic), re-exports, `new URL('./x.js', import.meta.url)`. */
function relativeImports(source: string): string[] {
  const found = source.matchAll(/\b(?:from|import)\s*\(?\s*['"](\.[^'"]+)['"]|new URL\(\s*['"](\.[^'"]+\.js)['"],\s*import\.meta\.url\)/g);
  return [...found].map((m) => m[1] ?? m[2]);
}

/** A module that only held types: tsc leaves `export {};`. */
const typesOnly = (source: string) => source.replace(/\/\/.*$/gm, '').trim() === 'export {};';

describe('the package', () => {
  it('npm pack ships every file the installed l3dsr loads, and no tests, benches, fuzzer or source maps', () => {
    const shipped = packedFiles();
    const reached = new Set<string>();
    const walk = (path: string) => {
      if (reached.has(path)) return;
      reached.add(path);
      assert.ok(shipped.has(path), `${path} is loaded by the installed l3dsr but not in the package`);
      for (const spec of relativeImports(read(path))) walk(normalize(join(dirname(path), spec)));
    };
    const pkg = JSON.parse(read('package.json')) as { bin: Record<string, string>; scripts: Record<string, string> };
    for (const bin of Object.values(pkg.bin)) walk(normalize(bin));
    for (const path of pkg.scripts.install.split(/\s+/).filter((w) => w.includes('/'))) walk(path);
    assert.ok(shipped.has('dist/wasm/core.wasm'), 'the WASM core (dist/wasm/core.wasm) is not in the package');

    const unused = [...shipped].filter((p) => p.startsWith('dist/') && p.endsWith('.js') && !reached.has(p) && !typesOnly(read(p)));
    assert.deepEqual(unused, [], 'shipped JavaScript that nothing of the installed l3dsr loads');
    const devOnly = [...shipped].filter((p) => /^(dist\/)?(test|bench|tools)\/|\.map$|\.ts$|test_netns/.test(p));
    assert.deepEqual(devOnly, [], 'development files in the package');
  });

  it('the native sources binding.gyp builds at install are all in the package', () => {
    const shipped = packedFiles();
    // gyp files are Python literals: drop the # comments to read them as JSON.
    const gyp = JSON.parse(read('binding.gyp').replace(/^\s*#.*$/gm, '')) as { targets: { target_name: string; sources: string[] }[] };
    const sources = gyp.targets.flatMap((t) => t.sources);
    assert.ok(sources.length > 0, 'binding.gyp has no sources');
    // Every header they include, and what those include in turn (the generated ABI header among them).
    const headers = new Set<string>();
    const follow = (file: string) => {
      for (const m of read(file).matchAll(/#include "([^"]+)"/g)) {
        const header = join(dirname(file), m[1]);
        if (headers.has(header)) continue;
        headers.add(header);
        follow(header);
      }
    };
    sources.forEach(follow);
    assert.ok(headers.has('native/abi.generated.h'), `the addon does not include the generated ABI header: ${[...headers]}`);
    assert.deepEqual([...sources, ...headers].filter((s) => !shipped.has(s)), []);
  });

  it('the install script builds the addon in a fresh clone, before anything is generated (npm ci runs it before prepare)', { timeout: 180_000 }, () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: Record<string, string> };
    const tracked = spawnSync('git', ['ls-files', '-z', '--', 'package.json', 'binding.gyp', 'scripts', 'native'], { cwd: root, encoding: 'utf8' });
    assert.equal(tracked.status, 0, `git ls-files (the tests run in a clone): ${tracked.stderr}`);
    const clone = mkdtempSync(join(tmpdir(), 'l3dsr-fresh-clone-'));
    try {
      // What a clone has of the install script's inputs: the tracked files, none of the generated ones.
      for (const path of tracked.stdout.split('\0').filter(Boolean)) {
        mkdirSync(dirname(join(clone, path)), { recursive: true });
        copyFileSync(join(root, path), join(clone, path));
      }
      assert.equal(existsSync(join(clone, 'native', 'abi.generated.h')), false);
      const [cmd, ...args] = pkg.scripts.install.split(/\s+/);
      assert.equal(cmd, 'node', `the install script is "${pkg.scripts.install}"`);
      // As npm runs it: npm names its own node-gyp (here, this tree's).
      const env = { ...process.env, npm_config_node_gyp: join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js') };
      const r = spawnSync(process.execPath, args, { cwd: clone, env, encoding: 'utf8', timeout: 170_000 });
      assert.equal(r.status, 0, `${pkg.scripts.install} in a fresh clone:\n${r.stdout}${r.stderr}`);
      assert.ok(existsSync(join(clone, 'build', 'Release', 'l3dsr_tun.node')), 'no addon built');
    } finally {
      rmSync(clone, { recursive: true, force: true });
    }
  });

  it('deploy/l3dsr.service starts the l3dsr that the README\'s install step installs', () => {
    const readme = read('README.md');
    const prefixes = new Set([...readme.matchAll(/npm install -g --prefix (\S+) \S*l3dsr-\S+\.tgz/g)].map((m) => m[1]));
    assert.equal(prefixes.size, 1, `the README should install with one "npm install -g --prefix DIR ./l3dsr-VERSION.tgz"; found prefixes: ${[...prefixes].join(', ') || 'none'}`);
    const [prefix] = prefixes;
    const unit = read('deploy/l3dsr.service');
    const execStart = /^ExecStart=(\S+)/m.exec(unit)?.[1];
    assert.equal(execStart, `${prefix}/bin/l3dsr`, 'ExecStart runs another program than the one the README installs');
    assert.match(unit, new RegExp(`^#.*npm install -g --prefix ${prefix.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} `, 'm'), 'the unit\'s header comment installs elsewhere');
  });
});
