// What a running daemon has changed on the system, kept in /run/l3dsr so
// that the next run after a crash (kill -9, OOM) can take it over and still
// undo it on its clean exit: the clsact qdiscs and sysctls it set, and the
// VIPs it put on lo. /run is emptied at boot, which is exactly when none of
// it survives either.

import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import type { SteeringOwnership, LoopbackAddress } from '../steering/index.js';

export interface DaemonState {
  pid: number;
  tun: string;
  steering?: SteeringOwnership;
  loopback: LoopbackAddress[];
}

export const statePath = (controlSocket: string): string => controlSocket.replace(/\.sock$/, '') + '.state.json';

/** The state an earlier run left, or undefined (none, or unreadable: then there is nothing to take over). */
export async function readState(path: string): Promise<DaemonState | undefined> {
  try {
    const s = JSON.parse(await readFile(path, 'utf8')) as DaemonState;
    return typeof s.pid === 'number' && Array.isArray(s.loopback) ? s : undefined;
  } catch {
    return undefined;
  }
}

/** Written whole and renamed into place, so a crash never leaves half a file. */
export async function writeState(path: string, state: DaemonState): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, path);
}

export async function removeState(path: string): Promise<void> {
  await rm(path, { force: true });
}
