#!/usr/bin/env node
// Builds every artefact the project runs: the shared ABI constants, the WASM
// core, the native TUN addon and the TypeScript. A step is skipped when its
// outputs are newer than its inputs, so `npm test` on a built tree is quick.
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildAddon } from './addon.mjs';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const force = process.argv.includes('--force');
const bin = (name) => join(root, 'node_modules', '.bin', name);

function newest(paths) {
  let t = 0;
  for (const p of paths) {
    const full = join(root, p);
    if (!existsSync(full)) continue;
    const st = statSync(full);
    if (st.isDirectory()) {
      for (const e of readdirSync(full)) t = Math.max(t, newest([join(p, e)]));
    } else t = Math.max(t, st.mtimeMs);
  }
  return t;
}
function oldest(paths) {
  let t = Infinity;
  for (const p of paths) {
    const full = join(root, p);
    if (!existsSync(full)) return 0;
    t = Math.min(t, statSync(full).mtimeMs);
  }
  return t;
}
function step(name, inputs, outputs, run) {
  if (!force && oldest(outputs) > newest(inputs)) return;
  process.stderr.write(`build: ${name}\n`);
  run();
}
function sh(cmd, args) {
  execFileSync(cmd, args, { cwd: root, stdio: 'inherit' });
}

// The ABI constants come first: the core, the addon (native/abi.generated.h is
// among its inputs, so a change rebuilds it) and the TypeScript all read them.
const ABI_OUTPUTS = ['assembly/abi.generated.ts', 'src/core/abi.generated.ts', 'src/tun/abi.generated.ts', 'native/abi.generated.h'];
step('ABI constants', ['scripts/abi.mjs'], ABI_OUTPUTS, () => sh(process.execPath, ['scripts/abi.mjs']));

step('WASM core (release, -O3)', ['assembly', 'asconfig.json'], ['dist/wasm/core.wasm'],
  () => sh(bin('asc'), ['assembly/index.ts', '--config', 'asconfig.json', '--target', 'release']));

step('WASM core (coverage build for the fuzzer)', ['assembly', 'asconfig.json', 'scripts/coverage.mjs'], ['dist/wasm/core.cov.wasm'],
  () => { if (existsSync(join(root, 'scripts/coverage.mjs'))) sh(process.execPath, ['scripts/coverage.mjs']); });

if (existsSync(join(root, 'binding.gyp'))) {
  step('native TUN addon', ['native', 'binding.gyp', 'scripts/addon.mjs'], ['build/Release/l3dsr_tun.node', 'build/Release/l3dsr_raw.node', 'build/Release/l3dsr_test_netns.node'], buildAddon);
}

const TS_DIRS = ['src', 'tools', 'test', 'bench'];
step('TypeScript', [...TS_DIRS, 'tsconfig.json', 'src/core/abi.generated.ts'], ['dist/.tsbuilt'], () => {
  // From scratch: JavaScript of a source that was moved or deleted must not
  // linger in dist/, where npm pack would ship it and tests could load it.
  for (const d of TS_DIRS) rmSync(join(root, 'dist', d), { recursive: true, force: true });
  sh(bin('tsc'), ['-p', 'tsconfig.json']);
  sh('touch', [join(root, 'dist/.tsbuilt')]);
});
