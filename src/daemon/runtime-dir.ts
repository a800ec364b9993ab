// Where the daemon keeps its control socket and state file: a directory that
// only its own user can write to — $RUNTIME_DIRECTORY when systemd made one
// (RuntimeDirectory=), else /run/l3dsr — created on start if missing. TUN
// names are per network namespace but /run is shared by all of them, so the
// files are named by namespace and TUN: daemons in two namespaces never see
// each other's files.

import { connect } from 'node:net';
import type { Server } from 'node:http';
import { lstat, mkdir, unlink } from 'node:fs/promises';
import type { Stats } from 'node:fs';
import { dirname, isAbsolute, join } from 'node:path';
import { netnsInode } from '../system/process.js';
import { errnoOf, L3dsrError } from '../errors.js';

export const DEFAULT_RUNTIME_DIRECTORY = '/run/l3dsr';
/** A Unix socket path holds at most 107 bytes (sun_path, less its NUL). */
const MAX_SOCKET_PATH = 107;
/** How long a listener gets to accept a probing connection before we count it as alive. */
const PROBE_TIMEOUT_MS = 1000;

/** $RUNTIME_DIRECTORY (the first, if systemd lists several), else /run/l3dsr. */
export function runtimeDirectory(env: NodeJS.ProcessEnv = process.env): string {
  const first = env.RUNTIME_DIRECTORY?.split(':')[0];
  return first ? first : DEFAULT_RUNTIME_DIRECTORY;
}

/** The default control socket of the daemon on `tun` in this process's network namespace. */
export function controlSocketPath(tun: string, dir = runtimeDirectory()): string {
  return join(dir, `${tun}.netns-${netnsInode()}.sock`);
}

/** The state file that goes with a control socket: beside it, same name. */
export const statePath = (controlSocket: string): string => `${controlSocket.replace(/\.sock$/, '')}.state.json`;

function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isDirectory()) return 'a directory';
  if (st.isFile()) return 'a regular file';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  return 'a device file';
}

/**
 * Creates the directory (mode 0700) unless it exists, then checks that it
 * is a real directory owned by us that nobody else can write to: anyone who
 * can write there could plant a state file we would act on, or take the
 * control socket's name.
 */
export async function prepareRuntimeDirectory(dir: string): Promise<void> {
  if (!isAbsolute(dir)) throw new L3dsrError('ERR_L3DSR_RUNTIME_DIR', `runtime directory "${dir}": not an absolute path`);
  const uid = process.geteuid!();
  try {
    await mkdir(dir, { mode: 0o700 });
  } catch (err) {
    const code = errnoOf(err);
    if (code !== 'EEXIST') {
      const why = code === 'ENOENT' ? `${dirname(dir)} does not exist` : (err as Error).message;
      const advice = code === 'EACCES' || code === 'EPERM' || code === 'EROFS'
        ? ` A daemon that is not root cannot create it there: run it under systemd with RuntimeDirectory=l3dsr (see deploy/l3dsr.service), or create a directory owned by uid ${uid}, mode 0700, and name it in RUNTIME_DIRECTORY.`
        : '';
      throw new L3dsrError('ERR_L3DSR_RUNTIME_DIR', `cannot create the runtime directory ${dir} as uid ${uid}: ${why}.${advice}`, { cause: err });
    }
  }
  const st = await lstat(dir);
  let problem: string | undefined;
  if (!st.isDirectory()) problem = `is ${kindOf(st)}, not a directory`;
  else if (st.uid !== uid) problem = `is owned by uid ${st.uid}, not by this process's uid ${uid}`;
  else if ((st.mode & 0o022) !== 0) problem = `is writable by its group or by others (mode ${(st.mode & 0o7777).toString(8).padStart(4, '0')})`;
  if (problem) {
    throw new L3dsrError('ERR_L3DSR_RUNTIME_DIR', `runtime directory ${dir} ${problem}: the control socket and the state file need a directory only uid ${uid} can write to`);
  }
}

/** Whether a process accepts connections on the socket at `path`: 'yes', 'no', or an errno code when we cannot tell. */
function probeSocket(path: string): Promise<'yes' | 'no' | string> {
  return new Promise((resolve) => {
    const s = connect({ path });
    const done = (answer: string) => { s.destroy(); resolve(answer); };
    s.setTimeout(PROBE_TIMEOUT_MS, () => done('yes'));
    s.once('connect', () => done('yes'));
    s.once('error', (err: NodeJS.ErrnoException) => {
      // A full accept queue (EAGAIN) means a listener that is busy, not gone.
      if (err.code === 'ECONNREFUSED' || err.code === 'ENOENT') done('no');
      else done(err.code === 'EAGAIN' ? 'yes' : err.code ?? err.message);
    });
  });
}

/**
 * Makes `path` free for our control socket: nothing there, or a socket
 * nobody listens on any more (left by a daemon that was killed), which is
 * removed. Anything else there is left alone and refused.
 */
export async function claimSocketPath(path: string): Promise<void> {
  const bytes = Buffer.byteLength(path);
  if (bytes > MAX_SOCKET_PATH) {
    throw new L3dsrError('ERR_L3DSR_RUNTIME_DIR', `control socket ${path}: ${bytes} bytes, but a Unix socket path holds at most ${MAX_SOCKET_PATH}`);
  }
  let st: Stats;
  try {
    st = await lstat(path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    throw new L3dsrError('ERR_L3DSR_RUNTIME_DIR', `control socket ${path}: ${(err as Error).message}`, { cause: err });
  }
  if (!st.isSocket()) {
    throw new L3dsrError('ERR_L3DSR_RUNTIME_DIR', `control socket ${path}: ${kindOf(st)} is in the way; it is left alone (remove it yourself, or choose another --control-socket)`);
  }
  const answer = await probeSocket(path);
  if (answer === 'yes') throw new L3dsrError('ERR_L3DSR_RUNTIME_DIR', `control socket ${path}: a process is listening on it (another l3dsr on this TUN in this network namespace?)`);
  if (answer !== 'no') throw new L3dsrError('ERR_L3DSR_RUNTIME_DIR', `control socket ${path}: cannot tell whether a process listens on it (${answer}); it is left alone`);
  await unlink(path).catch((err: NodeJS.ErrnoException) => { if (err.code !== 'ENOENT') throw err; });
}

/**
 * Listens on `path` with the socket file created 0600: bind() applies the
 * umask, so there is no moment when others could connect (a chmod after
 * bind would leave one). The socket file goes away when the server closes.
 */
export async function listenPrivately(server: Server, path: string): Promise<void> {
  const listening = new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.once('listening', () => { server.off('error', reject); resolve(); });
  });
  const umask = process.umask(0o177);
  try {
    // bind() happens inside listen(), synchronously.
    server.listen(path);
  } finally {
    process.umask(umask);
  }
  await listening;
  const st = await lstat(path);
  if (!st.isSocket() || (st.mode & 0o777) !== 0o600) {
    throw new L3dsrError('ERR_L3DSR_RUNTIME_DIR', `control socket ${path}: created as ${kindOf(st)} with mode ${(st.mode & 0o777).toString(8)}, expected a socket with mode 600`);
  }
}
