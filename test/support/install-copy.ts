// Parts of this tree copied to a directory every user can read, as an
// install in /opt/l3dsr is (a checkout may be private): what the tests of
// unprivileged operation run from. The caller removes it.
import { chmodSync, cpSync, lstatSync, mkdirSync, mkdtempSync, readdirSync } from 'node:fs';
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
