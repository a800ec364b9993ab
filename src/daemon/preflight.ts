// What `l3dsr run` checks before it changes anything, and what it learns
// there: the capability and the TUN device it needs, the links' MTU, that
// the TUN's name is free, the runtime directory and the control socket's
// path, which network namespace this is, and what an earlier run left in
// the state file. Nothing here is specific to the real server's rewrite.

import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { dirname } from 'node:path';
import { L3dsrError } from '../errors.js';
import { ipJson } from '../system/index.js';
import { CAP_NET_ADMIN, hasCapability, netnsInode, processStartTime } from '../system/process.js';
import { loadAddon } from '../tun/addon.js';
import { claimSocketPath, prepareRuntimeDirectory, statePath } from './runtime-dir.js';
import { earlierRun, type EarlierRun, type NetnsIdentity } from './state-file.js';

const DEFAULT_MTU = 1500;

export interface PreflightRequest {
  /** Which daemon, for what its errors say. */
  command: 'run' | 'lb';
  tun: string;
  /** Where marked packets arrive: each must exist, and the largest MTU among them is the TUN's. */
  interfaces: readonly string[];
  controlSocket: string;
}

/** What the daemon starts from. */
export interface Preflight {
  /** The largest MTU of the interfaces (at least 1500). */
  mtu: number;
  netns: NetnsIdentity;
  /** Of this process, for the state file. */
  startTime: number;
  stateFile: string;
  earlier: EarlierRun;
}

/**
 * Checks what can be checked without changing anything, makes the runtime
 * directory and the control socket's path ready, and judges the state file
 * an earlier run left. Throws an L3dsrError that says what is wrong.
 */
export async function preflight(request: PreflightRequest): Promise<Preflight> {
  const mtu = await checkSystem(request);
  await prepareRuntimeDirectory(dirname(request.controlSocket));
  await claimSocketPath(request.controlSocket);
  const netns = thisNetns();
  const startTime = (await processStartTime('self'))!;
  const stateFile = statePath(request.controlSocket);
  const earlier = await judgeEarlierRun(stateFile, request.tun, netns);
  return { mtu, netns, startTime, stateFile, earlier };
}

/** Why each daemon needs CAP_NET_ADMIN, and how its unit grants it. */
const NEEDS: Record<PreflightRequest['command'], string> = {
  run: 'l3dsr run needs CAP_NET_ADMIN to create its TUN device, tc filters and VIPs on lo and to set rp_filter',
  lb: 'l3dsr lb needs CAP_NET_ADMIN to create its TUN device and tc filters and to set rp_filter (and CAP_NET_RAW for its health checks)',
};
const GRANTS: Record<PreflightRequest['command'], string> = {
  run: 'AmbientCapabilities=CAP_NET_ADMIN, as in deploy/l3dsr.service',
  lb: 'AmbientCapabilities=CAP_NET_ADMIN CAP_NET_RAW, as in deploy/l3dsr-lb.service',
};

async function checkSystem({ command, tun, interfaces }: PreflightRequest): Promise<number> {
  const uid = process.geteuid!();
  if (!(await hasCapability(CAP_NET_ADMIN))) {
    throw new L3dsrError('ERR_L3DSR_START', `${NEEDS[command]}; uid ${uid} does not have it: run it as root, or with the capability (systemd: ${GRANTS[command]})`);
  }
  await access('/dev/net/tun', constants.R_OK | constants.W_OK).catch((err: NodeJS.ErrnoException) => {
    if (err.code === 'ENOENT') throw new L3dsrError('ERR_L3DSR_START', '/dev/net/tun is missing: load the tun module (modprobe tun)', { cause: err });
    throw new L3dsrError('ERR_L3DSR_START', `/dev/net/tun: uid ${uid} may not open it (${err.code}); distributions ship it with mode 0666 (crw-rw-rw-)`, { cause: err });
  });
  let mtu = DEFAULT_MTU;
  for (const dev of interfaces) {
    const links = await ipJson<{ mtu?: number }[]>(['link', 'show', 'dev', dev]).catch(() => undefined);
    if (!links?.length) throw new L3dsrError('ERR_L3DSR_START', `steer interface ${dev}: no such interface`);
    mtu = Math.max(mtu, links[0].mtu ?? DEFAULT_MTU);
  }
  const existing = await ipJson<{ ifname: string }[]>(['link', 'show', 'dev', tun]).catch(() => []);
  if (existing.length) {
    // Our TUN disappears with the process; one that exists belongs to someone else
    // (or is a persistent TUN of another tool).
    throw new L3dsrError('ERR_L3DSR_START', `--tun ${tun}: an interface of that name already exists (another l3dsr, or another tool)`);
  }
  return mtu;
}

/** Which network namespace this is: the inode names it among the living, the cookie forever. */
function thisNetns(): NetnsIdentity {
  try {
    return { inode: netnsInode(), cookie: String(loadAddon().netnsCookie()) };
  } catch (err) {
    throw new L3dsrError('ERR_L3DSR_START', `cannot tell which network namespace this is: ${(err as Error).message}`, { cause: err });
  }
}

/** What a crashed run left in the state file, judged before anything is changed; refuses to start beside a live one. */
async function judgeEarlierRun(stateFile: string, tun: string, netns: NetnsIdentity): Promise<EarlierRun> {
  let earlier: EarlierRun;
  try {
    earlier = await earlierRun(stateFile, tun, netns);
  } catch (err) {
    throw new L3dsrError('ERR_L3DSR_START', `state file ${stateFile}: ${(err as Error).message}`, { cause: err });
  }
  if (earlier.kind === 'running') {
    throw new L3dsrError('ERR_L3DSR_START', `state file ${stateFile}: the l3dsr that wrote it (pid ${earlier.pid}) is still running; stop it first`);
  }
  return earlier;
}
