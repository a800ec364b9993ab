// Kernel parameters through /proc/sys. In another network namespace the
// per-namespace files (net.*) are only visible to a process inside it, so
// reads and writes there go through `ip netns exec … cat/tee`.
import { readFile, writeFile } from 'node:fs/promises';
import { L3dsrError } from '../errors.js';
import { run, type Where } from './tools.js';

/**
 * `net.ipv4.conf.all.rp_filter` or, when a component contains a dot (an
 * interface like `eth0.100`), the slash form `net/ipv4/conf/eth0.100/rp_filter`.
 */
export type SysctlKey = string;

/** The slash form of a key built from components; use it for interface names. */
export const sysctlKey = (...parts: string[]): SysctlKey => parts.join('/');

/** /proc/sys path of a key; refuses anything that could leave /proc/sys. */
export function sysctlPath(key: SysctlKey): string {
  const relative = key.includes('/') ? key : key.replace(/\./g, '/');
  const parts = relative.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) {
    throw new L3dsrError('ERR_L3DSR_SYSCTL_KEY', `sysctl key ${JSON.stringify(key)}: empty, "." or ".." component`);
  }
  return `/proc/sys/${relative}`;
}

/** The current value, trimmed (e.g. `"1"`). */
export async function readSysctl(key: SysctlKey, where: Where = {}): Promise<string> {
  const path = sysctlPath(key);
  const text = where.netns === undefined ? await readFile(path, 'utf8') : await run('cat', [path], where);
  return text.trim();
}

export async function writeSysctl(key: SysctlKey, value: string, where: Where = {}): Promise<void> {
  const path = sysctlPath(key);
  if (where.netns === undefined) await writeFile(path, `${value}\n`);
  else await run('tee', [path], where, `${value}\n`);
}
