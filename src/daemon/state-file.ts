// What a running daemon has changed on the system, kept beside its control
// socket so that the next run after a crash (kill -9, OOM) can take it over
// and still undo it on its clean exit: the clsact qdiscs and sysctls it set,
// and the VIPs it put on lo. /run is emptied at boot, which is exactly when
// none of it survives either.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { open, readFile, rename, unlink } from 'node:fs/promises';
import type { SteeringOwnership, LoopbackAddress } from '../steering/index.js';

export interface DaemonState {
  pid: number;
  tun: string;
  steering?: SteeringOwnership;
  loopback: LoopbackAddress[];
}

/** The state an earlier run left, or undefined (none, or unreadable: then there is nothing to take over). */
export async function readState(path: string): Promise<DaemonState | undefined> {
  try {
    const s = JSON.parse(await readFile(path, 'utf8')) as DaemonState;
    return typeof s.pid === 'number' && Array.isArray(s.loopback) ? s : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Written whole and renamed into place, so a crash never leaves half a
 * file: the temporary file is created new (O_EXCL, never through a link),
 * its mode set on the descriptor.
 */
export async function writeState(path: string, state: DaemonState): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  const fh = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.chmod(0o600);
    await fh.writeFile(`${JSON.stringify(state, null, 2)}\n`);
  } catch (err) {
    await fh.close();
    await unlink(tmp).catch(() => {});
    throw err;
  }
  await fh.close();
  try {
    await rename(tmp, path);
  } catch (err) {
    await unlink(tmp).catch(() => {});
    throw err;
  }
}

export async function removeState(path: string): Promise<void> {
  await unlink(path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err; });
}
