#!/usr/bin/env node
// Builds the native TUN addon with node-gyp. This is the package's install
// script (npm runs it when l3dsr is installed from its tarball, where no
// devDependency exists), and scripts/build.mjs calls buildAddon() in the
// development tree. Only Node's own modules are used here.
//
// Headers: node-gyp downloads them from nodejs.org unless told a directory
// (npm's `nodedir`). The addon uses N-API only (NAPI_VERSION 8), whose ABI
// does not change between Node releases, so any installed Node's headers
// will do: the running Node's own (nodejs.org tarballs and NodeSource
// install them beside the binary), else a system Node's in /usr. Only when
// there are none does node-gyp download them.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

/** The Node installation whose headers to build against, or undefined to let node-gyp decide. */
function headersDir() {
  if (process.env.npm_config_nodedir) return undefined; // the user's npm config says; node-gyp reads it
  const beside = dirname(dirname(process.execPath));
  for (const dir of [beside, '/usr']) {
    if (existsSync(join(dir, 'include', 'node', 'node_api.h'))) return dir;
  }
  return undefined;
}

/** npm's own node-gyp inside npm scripts, else the development tree's, else the one on the PATH. */
function nodeGyp() {
  if (process.env.npm_config_node_gyp) return [process.execPath, process.env.npm_config_node_gyp];
  const local = join(root, 'node_modules', '.bin', 'node-gyp');
  return existsSync(local) ? [local] : ['node-gyp'];
}

/**
 * The ABI header the addon includes is generated (scripts/abi.mjs), not
 * committed, and `npm ci` runs this install script before `prepare` builds
 * anything: a fresh clone has none yet. The package ships the header and
 * not its generator, so there this does nothing.
 */
function generateAbiHeader() {
  const generator = join(root, 'scripts', 'abi.mjs');
  if (existsSync(generator) && !existsSync(join(root, 'native', 'abi.generated.h'))) {
    execFileSync(process.execPath, [generator], { cwd: root, stdio: 'inherit' });
  }
}

export function buildAddon() {
  generateAbiHeader();
  const [cmd, ...args] = nodeGyp();
  args.push('rebuild');
  const nodedir = headersDir();
  if (nodedir) args.push(`--nodedir=${nodedir}`);
  // The test-only addon is built where its source is: the development tree, not the package.
  if (existsSync(join(root, 'native', 'test_netns.c'))) args.push('--l3dsr_test_addon=1');
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) buildAddon();
