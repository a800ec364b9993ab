// Evidence that Direct Server Return happened: nftables counters in cli
// that tell replies arriving on the direct link from srv apart from ones
// arriving via the LB, the LB's own per-VIP counters, and a tcpdump of the
// direct link.
import { createInterface } from 'node:readline';
import type { Family } from '../../src/core/types.js';
import { LAB_INTERFACES, LB_TABLE, sameAddress, type Lab } from '../lab/index.js';
import { nft, nftApply } from '../../src/system/index.js';

const OBSERVE_TABLE = 'l3dsr_observe';
/** Where the lab's VIPs live (cli routes these via the LB). */
const VIP_PREFIX: Record<Family, string> = { 4: '203.0.113.0/24', 6: '2001:db8:203::/64' };
const NFT_FAMILY: Record<Family, 'ip' | 'ip6'> = { 4: 'ip', 6: 'ip6' };

export interface ReturnPathCounts {
  /** Packets from a VIP that arrived on cli's direct link from srv (veth-c). */
  direct: Record<Family, number>;
  /** Packets from a VIP that arrived on cli's link to the LB (c-lb): none, with DSR. */
  viaLb: Record<Family, number>;
}

interface NftJson {
  nftables: Array<{ rule?: { comment?: string; expr: Array<Record<string, unknown>> } }>;
}

/** Counts, in cli, packets from the VIPs per arrival link and family. */
export async function installReturnPathCounters(lab: Lab): Promise<void> {
  const i = LAB_INTERFACES;
  const lines = [`table inet ${OBSERVE_TABLE} {`, '  chain in {', '    type filter hook prerouting priority raw;'];
  for (const family of [4, 6] as const) {
    const saddr = `${NFT_FAMILY[family]} saddr ${VIP_PREFIX[family]}`;
    lines.push(`    iifname "${i.cliToSrv}" ${saddr} counter comment "direct${family}"`);
    lines.push(`    iifname "${i.cliToLb}" ${saddr} counter comment "vialb${family}"`);
  }
  lines.push('  }', '}', '');
  await nftApply(lines.join('\n'), lab.where('cli'));
}

export async function readReturnPathCounters(lab: Lab): Promise<ReturnPathCounts> {
  const listing = JSON.parse(await nft(['-j', 'list', 'table', 'inet', OBSERVE_TABLE], lab.where('cli'))) as NftJson;
  const count = (comment: string): number => {
    const rule = listing.nftables.find((e) => e.rule?.comment === comment)?.rule;
    const counter = rule?.expr.find((x) => 'counter' in x)?.counter as { packets: number } | undefined;
    if (counter === undefined) throw new Error(`cli: no counter "${comment}" in table inet ${OBSERVE_TABLE}`);
    return counter.packets;
  };
  return {
    direct: { 4: count('direct4'), 6: count('direct6') },
    viaLb: { 4: count('vialb4'), 6: count('vialb6') },
  };
}

/** Packets the LB rewrote (VIP → RIP, DSCP set) per VIP, from its nftables counters. */
export async function lbForwarded(lab: Lab, vip: string): Promise<number> {
  const family: Family = vip.includes(':') ? 6 : 4;
  const listing = JSON.parse(await nft(['-j', 'list', 'table', NFT_FAMILY[family], LB_TABLE], lab.where('lb'))) as NftJson;
  for (const entry of listing.nftables) {
    const expr = entry.rule?.expr ?? [];
    const match = expr.find((x) => 'match' in x)?.match as { right?: unknown } | undefined;
    const counter = expr.find((x) => 'counter' in x)?.counter as { packets: number } | undefined;
    if (typeof match?.right === 'string' && sameAddress(match.right, vip) && counter) return counter.packets;
  }
  throw new Error(`lb: no counter for ${vip} in table ${NFT_FAMILY[family]} ${LB_TABLE}`);
}

export interface Capture {
  /** Lines tcpdump printed so far. */
  readonly lines: string[];
  stop(): Promise<void>;
}

/**
 * Runs `tcpdump -i IFACE -nn -q -t -l -Q in FILTER` in a namespace and
 * resolves once it is listening.
 */
export async function startCapture(lab: Lab, role: 'cli' | 'lb' | 'srv', iface: string, filter: string): Promise<Capture> {
  const child = lab.spawn(role, 'tcpdump', ['-i', iface, '-nn', '-q', '-t', '-l', '-Q', 'in', filter], { stdio: ['ignore', 'pipe', 'pipe'] });
  const lines: string[] = [];
  createInterface({ input: child.stdout! }).on('line', (l) => lines.push(l));
  let stderr = '';
  await new Promise<void>((resolve, reject) => {
    child.stderr!.on('data', (chunk: Buffer) => {
      stderr += chunk.toString();
      if (stderr.includes('listening on')) resolve();
    });
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`tcpdump exited (${code}): ${stderr.trim()}`)));
  });
  return {
    lines,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('close', r));
      child.kill('SIGINT');
      await exited;
    },
  };
}
