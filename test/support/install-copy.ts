// Parts of this tree copied to a directory every user can read, as an
// install in /opt/l3dsr is (a checkout may be private): what the tests of
// unprivileged operation run from. The caller removes it. And the TUN
// device opened to every user for such a test, as distributions ship it.
import { chmodSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { L3DSR_BIN } from './daemon.js';

/** Copies `parts` (paths from the project root) and opens them to all users (0755 / 0644); returns the copy's root. */
export function installCopy(parts: readonly string[]): string {
  const root = dirname(dirname(L3DSR_BIN));
  const dest = mkdtempSync(join(tmpdir(), 'l3dsr-install-'));
  for (const part of parts) {
    mkdirSync(dirname(join(dest, part)), { recursive: true });
    cpSync(join(root, part), join(dest, part), { recursive: true });
  }
  const open = (path: string): void => {
    const st = lstatSync(path);
    chmodSync(path, st.isDirectory() || (st.mode & 0o100) !== 0 ? 0o755 : 0o644);
    if (st.isDirectory()) for (const e of readdirSync(path)) open(join(path, e));
  };
  open(dest);
  return dest;
}

/** What `l3dsr run` loads. */
export const DAEMON_PARTS = ['package.json', 'bin', 'dist/src', 'dist/wasm', 'build/Release/l3dsr_tun.node', 'node_modules/ipaddr.js'] as const;

const TUN_DEVICE = '/dev/net/tun';

/** Runs `fn` with /dev/net/tun open to all users (mode 0666, as distributions ship it); the old mode comes back whatever happens. */
export async function withTunOpenToAll<T>(fn: () => Promise<T>): Promise<T> {
  const mode = statSync(TUN_DEVICE).mode & 0o7777;
  chmodSync(TUN_DEVICE, 0o666);
  try {
    return await fn();
  } finally {
    chmodSync(TUN_DEVICE, mode);
  }
}
