// What a lab's system looks like, as text, for "nothing was left behind":
// per namespace the links, addresses, routes, tc qdiscs and filters on every
// interface, the rp_filter sysctls, the processes, and the files of a
// runtime directory. Two snapshots taken before and after a run must be
// equal; diffSnapshots() names what changed.
import { readdirSync, readFileSync, readlinkSync, statSync } from 'node:fs';
import type { Lab, LabRole } from '../../tools/lab/index.js';
import { ipJson, readSysctl, tc } from '../../src/system/index.js';

const ROLES: readonly LabRole[] = ['cli', 'lb', 'srv'];
/** How long the lab's links may take to settle (carrier, link-local addresses) before a snapshot means anything. */
const SETTLE_TIMEOUT_MS = 10_000;
const SETTLE_POLL_MS = 250;

export type SystemSnapshot = Record<string, string>;

interface LinkJson {
  ifname: string;
  link_type?: string;
  mtu?: number;
  qdisc?: string;
  txqlen?: number;
  flags?: string[];
}

/** A failing command is part of the picture too (e.g. a device that is gone). */
const text = (p: Promise<string>): Promise<string> => p.catch((err: Error) => `error: ${err.message}`);

/** The processes whose network namespace is the one at `/run/netns/NAME`, as `comm: cmdline` lines. */
function processesIn(namespace: string): string[] {
  const want = statSync(`/run/netns/${namespace}`).ino;
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((p) => /^\d+$/.test(p))) {
    try {
      if (readlinkSync(`/proc/${pid}/ns/net`) !== `net:[${want}]`) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
      found.push(`${readFileSync(`/proc/${pid}/comm`, 'utf8').trim()}: ${cmdline}`);
    } catch {
      // The process ended while we looked.
    }
  }
  return found.sort();
}

function filesIn(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw err;
  }
}

export interface SnapshotOptions {
  /** Directories whose files count (e.g. the daemon's runtime directory); one that does not exist has none. */
  directories?: readonly string[];
}

/** One snapshot of the lab's namespaces (and of the given directories). */
export async function snapshotLab(lab: Lab, options: SnapshotOptions = {}): Promise<SystemSnapshot> {
  const s: SystemSnapshot = {};
  for (const role of ROLES) {
    const where = lab.where(role);
    const links = await ipJson<LinkJson[]>(['link', 'show'], where);
    // Operational state and carrier come and go with the peer; what a program configures stays.
    s[`${role}: links`] = links.map((l) => `${l.ifname} ${l.link_type} mtu ${l.mtu} qdisc ${l.qdisc} txqlen ${l.txqlen} ${l.flags?.includes('UP') ? 'up' : 'down'}`).join('\n');
    s[`${role}: addresses`] = await text(lab.exec(role, 'ip', ['-o', 'addr', 'show']));
    for (const family of ['-4', '-6']) s[`${role}: routes ${family}`] = await text(lab.exec(role, 'ip', [family, 'route', 'show', 'table', 'all']));
    s[`${role}: tc qdiscs`] = await text(tc(['qdisc', 'show'], where));
    for (const l of links) {
      for (const hook of ['ingress', 'egress']) s[`${role}: tc filters ${l.ifname} ${hook}`] = await text(tc(['filter', 'show', 'dev', l.ifname, hook], where));
    }
    for (const dev of ['all', 'default', ...links.map((l) => l.ifname)]) {
      s[`${role}: net/ipv4/conf/${dev}/rp_filter`] = await text(readSysctl(`net/ipv4/conf/${dev}/rp_filter`, where));
    }
    s[`${role}: processes`] = processesIn(lab.namespaces[role]).join('\n');
  }
  for (const dir of options.directories ?? []) s[`files in ${dir}`] = filesIn(dir).join('\n');
  return s;
}

/** What differs between two snapshots, one line (or block) per key. */
export function diffSnapshots(before: SystemSnapshot, after: SystemSnapshot): string[] {
  const keys = [...new Set([...Object.keys(before), ...Object.keys(after)])];
  return keys.filter((k) => before[k] !== after[k]).map((k) => `${k}:\n  before: ${JSON.stringify(before[k] ?? '(none)')}\n  after:  ${JSON.stringify(after[k] ?? '(none)')}`);
}

/** A snapshot once two in a row agree: freshly made links still gain carrier and link-local addresses. */
export async function settledSnapshot(lab: Lab, options: SnapshotOptions = {}): Promise<SystemSnapshot> {
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  let last = await snapshotLab(lab, options);
  for (;;) {
    await new Promise((r) => setTimeout(r, SETTLE_POLL_MS));
    const next = await snapshotLab(lab, options);
    if (diffSnapshots(last, next).length === 0) return next;
    if (Date.now() > deadline) throw new Error(`the lab did not settle within ${SETTLE_TIMEOUT_MS} ms:\n${diffSnapshots(last, next).join('\n')}`);
    last = next;
  }
}
