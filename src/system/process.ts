// What /proc tells about a process: when it started (a pid alone names a
// different process once the pid is reused), its network namespace, and
// its capabilities.
import { readFile } from 'node:fs/promises';
import { statSync } from 'node:fs';
import { L3dsrError } from '../errors.js';

/** Capability numbers (linux/capability.h) the daemon asks about. */
export const CAP_NET_ADMIN = 12;

/**
 * The start time of a process, in clock ticks after boot (field 22 of
 * /proc/PID/stat); undefined when no such process exists. A pid and its
 * start time together name one process until the next boot.
 */
export async function processStartTime(pid: number | 'self'): Promise<number | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT' || (err as NodeJS.ErrnoException).code === 'ESRCH') return undefined;
    throw err;
  }
  // The command name (field 2) is in parentheses and may itself hold ") ".
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  const start = Number(fields[22 - 3]);
  if (!Number.isSafeInteger(start)) throw new L3dsrError('ERR_L3DSR_COMMAND_OUTPUT', `/proc/${pid}/stat: no start time in ${JSON.stringify(text)}`);
  return start;
}

/**
 * The inode number of a process's network namespace (`net:[INODE]`): it
 * tells namespaces that exist at the same time apart. A namespace created
 * after another one is gone may get the same number again.
 */
export function netnsInode(pid: number | 'self' = 'self'): number {
  return statSync(`/proc/${pid}/ns/net`).ino;
}

/** Whether this process has capability `cap` in its effective set (CapEff in /proc/self/status). */
export async function hasCapability(cap: number): Promise<boolean> {
  const status = await readFile('/proc/self/status', 'utf8');
  const hex = /^CapEff:\s*([0-9a-f]+)$/m.exec(status)?.[1];
  if (hex === undefined) throw new L3dsrError('ERR_L3DSR_COMMAND_OUTPUT', '/proc/self/status: no CapEff line');
  return ((BigInt(`0x${hex}`) >> BigInt(cap)) & 1n) === 1n;
}
