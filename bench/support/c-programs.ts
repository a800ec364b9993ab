// The benchmarks' C programs (bench/c), compiled with cc at bench time into
// a fresh temporary directory; the TUN loop shares the addon's raw io_uring,
// TUN and offload helpers (native/), so it needs the generated ABI header
// that the build makes.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = (path: string) => fileURLToPath(new URL(`../../../${path}`, import.meta.url));

export interface CPrograms {
  /** bench/c/tun-loop.c */
  tunLoop: string;
  remove(): void;
}

export function buildCPrograms(): CPrograms {
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-bench-c-'));
  const tunLoop = join(dir, 'tun-loop');
  try {
    execFileSync('cc', ['-O2', '-Wall', '-I', root('native'), '-o', tunLoop, root('bench/c/tun-loop.c'),
      ...['uring.c', 'tun_open.c', 'offload.c'].map((f) => root(`native/${f}`))], { stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`cannot compile bench/c/tun-loop.c with cc: ${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
  }
  return { tunLoop, remove: () => rmSync(dir, { recursive: true, force: true }) };
}
