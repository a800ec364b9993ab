// What a running daemon has changed on the system, kept beside its control
// socket so that the next run after a crash (kill -9, OOM) can take it over
// and still undo it on its clean exit: the clsact qdiscs and sysctls it set,
// and the VIPs it put on lo. /run is emptied at boot, which is exactly when
// none of it survives either.
//
// The next run acts on the file only when the process that wrote it is dead
// (its pid and start time no longer name a running process), when it was
// written in this network namespace, and when every field is one the daemon
// itself could have written. Anything else is refused and set aside.

import { randomBytes } from 'node:crypto';
import { constants } from 'node:fs';
import { lstat, open, readdir, rename, unlink } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { parseAddress } from '../core/address.js';
import { L3dsrError } from '../errors.js';
import { isLoopbackAddress, rpFilterKeys, RP_FILTER_VALUES } from '../steering/index.js';
import type { LoopbackAddress, SteeringOwnership } from '../steering/index.js';
import { isInterfaceName } from '../system/interface-name.js';
import { processStartTime } from '../system/process.js';

/** Which network namespace: the inode names it among the living, the cookie is never reused. */
export interface NetnsIdentity {
  inode: number;
  /** SO_NETNS_COOKIE, a 64-bit number in decimal. */
  cookie: string;
}

export interface DaemonState {
  pid: number;
  /** Of the process `pid` (clock ticks after boot): a reused pid has another. */
  startTime: number;
  netns: NetnsIdentity;
  tun: string;
  steering?: SteeringOwnership;
  loopback: LoopbackAddress[];
}

/** A state file we will not act on: says which file, which field, and what is wrong. */
export class StateFileError extends L3dsrError {
  override name = 'StateFileError';
  constructor(readonly path: string, readonly field: string, detail: string) {
    super('ERR_L3DSR_STATE_FILE', `${path}: ${field}: ${detail}`);
  }
}

/** A real state file is a few hundred bytes per VIP; this bounds what we read. */
const MAX_STATE_BYTES = 1 << 20;
const KEYS = ['pid', 'startTime', 'netns', 'tun', 'steering', 'loopback'];

const isRecord = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Checks every field of a state file's text against what the daemon on `tun` could have written. */
export function parseState(text: string, path: string, tun: string): DaemonState {
  const fail = (field: string, detail: string): never => { throw new StateFileError(path, field, detail); };
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (err) {
    return fail('(file)', `not JSON: ${(err as Error).message}`);
  }
  if (!isRecord(raw)) return fail('(file)', 'expected a JSON object');
  for (const k of Object.keys(raw)) if (!KEYS.includes(k)) fail(k, 'not a field of a state file');
  const { pid, startTime, netns, steering, loopback } = raw;
  if (typeof pid !== 'number' || !Number.isInteger(pid) || pid < 1) fail('pid', `expected a process id, got ${JSON.stringify(pid)}`);
  if (typeof startTime !== 'number' || !Number.isSafeInteger(startTime) || startTime < 0) fail('startTime', `expected clock ticks, got ${JSON.stringify(startTime)}`);
  if (!isRecord(netns) || typeof netns.inode !== 'number' || !Number.isSafeInteger(netns.inode) || typeof netns.cookie !== 'string' || !/^\d{1,20}$/.test(netns.cookie)) {
    fail('netns', `expected { inode, cookie }, got ${JSON.stringify(netns)}`);
  }
  if (raw.tun !== tun) fail('tun', `expected "${tun}" (the TUN of this daemon), got ${JSON.stringify(raw.tun)}`);

  let ownership: SteeringOwnership | undefined;
  if (steering !== undefined) {
    if (!isRecord(steering) || !Array.isArray(steering.createdClsact) || !isRecord(steering.sysctls)) {
      fail('steering', `expected { createdClsact: [...], sysctls: {...} }, got ${JSON.stringify(steering)}`);
    }
    const s = steering as { createdClsact: unknown[]; sysctls: Record<string, unknown> };
    for (const dev of s.createdClsact) if (!isInterfaceName(dev)) fail('steering.createdClsact', `${JSON.stringify(dev)} is not an interface name`);
    const allowed = rpFilterKeys(tun);
    for (const [key, value] of Object.entries(s.sysctls)) {
      if (!allowed.includes(key)) fail('steering.sysctls', `${JSON.stringify(key)} is not a sysctl l3dsr sets (only ${allowed.join(', ')})`);
      if (typeof value !== 'string' || !RP_FILTER_VALUES.includes(value)) fail(`steering.sysctls.${key}`, `expected one of ${RP_FILTER_VALUES.join(', ')}, got ${JSON.stringify(value)}`);
    }
    ownership = { createdClsact: s.createdClsact as string[], sysctls: s.sysctls as Record<string, string> };
  }

  if (!Array.isArray(loopback)) return fail('loopback', `expected a list of addresses, got ${JSON.stringify(loopback)}`);
  const vips: LoopbackAddress[] = loopback.map((a, i) => {
    const field = `loopback[${i}]`;
    if (!isRecord(a) || (a.family !== 4 && a.family !== 6) || typeof a.address !== 'string') {
      return fail(field, `expected { family: 4 or 6, address }, got ${JSON.stringify(a)}`);
    }
    const parsed = parseAddress(a.address);
    if (typeof parsed === 'string') return fail(field, `${JSON.stringify(a.address)}: ${parsed}`);
    if (parsed.family !== a.family) fail(field, `${a.address} is not an IPv${a.family} address`);
    if (isLoopbackAddress(parsed.text)) fail(field, `${a.address} belongs to lo itself; l3dsr never adds or removes it`);
    return { family: a.family, address: parsed.text };
  });
  return {
    pid: pid as number, startTime: startTime as number, netns: { inode: (netns as NetnsIdentity).inode, cookie: (netns as NetnsIdentity).cookie }, tun, steering: ownership, loopback: vips,
  };
}

/**
 * The file's text, or undefined when there is none. Opened without
 * following a link and without blocking on a FIFO; only a regular file
 * of ours, of a sane size, is read.
 */
async function readStateText(path: string): Promise<string | undefined> {
  let fh;
  try {
    fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') return undefined;
    throw new StateFileError(path, '(file)', code === 'ELOOP' ? 'is a symbolic link' : (err as Error).message);
  }
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new StateFileError(path, '(file)', 'not a regular file');
    if (st.uid !== process.geteuid!()) throw new StateFileError(path, '(file)', `owned by uid ${st.uid}, not by this process's uid ${process.geteuid!()}`);
    if (st.size > MAX_STATE_BYTES) throw new StateFileError(path, '(file)', `${st.size} bytes; a state file is far smaller`);
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** What an earlier run left at a state file's path, and what this run may do with it. */
export type EarlierRun =
  | { kind: 'none' }
  /** Its process is dead and it was written here: take it over. */
  | { kind: 'dead'; state: DaemonState }
  /** Its process still runs: leave it alone and do not start. */
  | { kind: 'running'; pid: number }
  /** Not acted on: invalid, or of a namespace that is gone; kept aside as `keptAs`. */
  | { kind: 'refused'; reason: string; keptAs: string };

/** Reads and judges the state file at `path` for the daemon on `tun` in namespace `netns`. */
export async function earlierRun(path: string, tun: string, netns: NetnsIdentity): Promise<EarlierRun> {
  await removeDeadTemporaries(path);
  let state: DaemonState;
  try {
    const text = await readStateText(path);
    if (text === undefined) return { kind: 'none' };
    state = parseState(text, path, tun);
  } catch (err) {
    if (!(err instanceof StateFileError)) throw err;
    return { kind: 'refused', reason: err.message, keptAs: await setAside(path) };
  }
  if (await processStartTime(state.pid) === state.startTime) return { kind: 'running', pid: state.pid };
  if (state.netns.inode !== netns.inode || state.netns.cookie !== netns.cookie) {
    const reason = `${path}: written in network namespace ${state.netns.inode} (cookie ${state.netns.cookie}), which is gone; this is ${netns.inode} (cookie ${netns.cookie})`;
    return { kind: 'refused', reason, keptAs: await setAside(path) };
  }
  return { kind: 'dead', state };
}

/** Renames a refused file out of the way: nothing is lost, and the next run does not trip over it again. */
async function setAside(path: string): Promise<string> {
  const aside = `${path}.refused`;
  await rename(path, aside);
  return aside;
}

const TEMPORARY_RANDOM_BYTES = 6;
/** writeState's temporary files: the state file's name, the writer's pid, random hex. */
const TEMPORARY = new RegExp(`^(.+)\\.(\\d+)\\.[0-9a-f]{${2 * TEMPORARY_RANDOM_BYTES}}\\.tmp$`);

/**
 * Removes the temporary files of writeStates that a kill cut short (between
 * creating the file and renaming it): only beside `path`, only regular
 * files of ours, only of writers that no longer run.
 */
async function removeDeadTemporaries(path: string): Promise<void> {
  const dir = dirname(path);
  for (const name of await readdir(dir)) {
    const m = TEMPORARY.exec(name);
    if (m?.[1] !== basename(path)) continue;
    const pid = Number(m[2]);
    if (pid === process.pid || (await processStartTime(pid)) !== undefined) continue;
    const file = join(dir, name);
    const st = await lstat(file).catch(() => undefined);
    if (!st?.isFile() || st.uid !== process.geteuid!()) continue;
    await unlink(file).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err; });
  }
}

/**
 * Written whole and renamed into place, so a crash never leaves half a
 * file: the temporary file is created new (O_EXCL, never through a link),
 * its mode set on the descriptor.
 */
export async function writeState(path: string, state: DaemonState): Promise<void> {
  const tmp = `${path}.${process.pid}.${randomBytes(TEMPORARY_RANDOM_BYTES).toString('hex')}.tmp`;
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
