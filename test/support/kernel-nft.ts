// The reference the core is compared with: the kernel's own nftables
// `ip daddr set` / `ip6 daddr set` rewrite applied to the very same bytes.
//
// Default path ('netdev'): a throw-away namespace with two persistent TUNs,
// kin and kout, and one netdev-family chain on kin's ingress hook:
//
//   ip dscp D ip daddr set VIP          (one line per rule, in order)
//   ip6 dscp D ip6 daddr set VIP
//   fwd to "kout"
//
// tun_relay.py writes each packet into kin and reads what appears on kout.
// The payload-set code that runs is the same as in a prerouting chain
// (nft_payload_set_eval: IPv4 header checksum, L4 pseudo-header fix-up,
// CSUM_MANGLED_0), and nothing else touches the packet: no IP input checks,
// no TTL decrement, no trimming of bytes after `total length`, no options
// processing, no defragmentation (no conntrack). The packet is CHECKSUM_NONE,
// as it would be arriving from a NIC without checksum offload.
//
// Alternative path ('forward'): ip/ip6 family prerouting chains with the same
// rules in a namespace that forwards kin → kout. That is the textbook setup
// but the IP stack also acts: ip_rcv drops packets with a bad IPv4 header
// checksum or length and trims padding beyond `total length`; forwarding
// drops TTL ≤ 1, processes IPv4 options (record route/timestamp rewrite and
// a full header-checksum recomputation) and decrements TTL / hop limit,
// patching the IPv4 header checksum the kernel's way (ip_decrease_ttl). This
// module undoes the decrement exactly (see undoIpv4TtlDecrement), except that
// a resulting checksum the CPU loads as 0x0001 (bytes 01 00) has two preimages;
// such results carry a note. Tests use it to show that both paths agree.
//
// In both paths an output-hook rule drops every packet the namespace itself
// sends to kout (MLD reports, ICMP errors), so that only the answer to the
// packet just written can appear there.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { addNamespace, deleteNamespace, ip, nftApply, runCommand, writeSysctl, type Where } from '../../src/system/index.js';
import { buildPacket, udp } from '../../tools/packets/build.js';
import { IPV4, IPV6, PROTO } from '../../tools/packets/layout.js';
import { PYTHON } from './python.js';

export type KernelPath = 'netdev' | 'forward';

export interface KernelRule {
  family: 4 | 6;
  /** The DSCP to match (the real server's rules); absent: any (the balancer's, which match a VIP by `match`). */
  dscp?: number;
  destination: string;
  /** Also match this destination prefix (CIDR text), like a core Rule's `match`. */
  match?: string;
  /** Also set the DSCP (the LB side of L3DSR); ECN bits are kept. */
  setDscp?: number;
}

export interface KernelResult {
  /** The packet as the kernel emitted it; null when the kernel did not emit it. */
  output: Uint8Array | null;
  /** Anything a reader must know about this result (why null, extra packets, ambiguity). */
  note?: string;
}

/** What compareWithKernel compared, and what it left out and why. */
export interface KernelComparison {
  compared: number;
  /** Of those compared, the ones ours changed (verdict `rewritten`). */
  rewritten: number;
  skipped: Record<string, number>;
}

/**
 * Runs a copy of each input through `ours` (in place; it answers the
 * verdict) and requires the bytes the kernel emitted for it, except where
 * `departs` names why the kernel is not the reference for that packet.
 */
export function compareWithKernel(
  inputs: readonly Uint8Array[], kernel: readonly KernelResult[],
  ours: (packet: Uint8Array) => string, departs: (input: Uint8Array, verdict: string) => string | undefined,
): KernelComparison {
  const skipped: Record<string, number> = {};
  let compared = 0;
  let rewritten = 0;
  inputs.forEach((input, i) => {
    const out = input.slice();
    const verdict = ours(out);
    const why = departs(input, verdict);
    if (why) { skipped[why] = (skipped[why] ?? 0) + 1; return; }
    const k = kernel[i]!;
    const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
    assert.ok(k.output, `packet ${i} (${verdict}): the kernel emitted nothing (${k.note ?? 'no note'}): ${hex(input)}`);
    assert.equal(hex(out), hex(k.output), `packet ${i} (${verdict}) differs from the kernel; input ${hex(input)}`);
    compared++;
    if (verdict === 'rewritten') rewritten++;
  });
  return { compared, rewritten, skipped };
}

export interface KernelOptions {
  path?: KernelPath;
  /** How long to wait for a packet before deciding the kernel dropped it. */
  settleMs?: number;
}

const TUN_IN = 'kin';
const TUN_OUT = 'kout';
/** Largest MTU a TUN accepts: nothing we send should be fragmented or refused for size. */
const TUN_MTU = '65535';
const TABLE = 'l3dsr_kernel_ref';


let runCount = 0;

/** Sends every packet through one namespace whose nftables applies `rules`; one result per packet, same order. */
export async function rewriteWithKernel(
  packets: readonly Uint8Array[], rules: readonly KernelRule[], options: KernelOptions = {},
): Promise<KernelResult[]> {
  const path = options.path ?? 'netdev';
  for (const r of rules) {
    for (const d of [r.dscp ?? 0, r.setDscp ?? 0]) {
      if (!Number.isInteger(d) || d < 0 || d > 63) throw new Error(`kernel rule ${JSON.stringify(r)}: DSCP ${d} is not 0-63`);
    }
  }
  if (process.getuid?.() !== 0) throw new Error('rewriteWithKernel needs root (network namespaces, TUN devices, nftables)');
  const netns = `l3dsr-k-${process.pid}-${++runCount}`;
  const where: Where = { netns };
  await addNamespace(netns);
  try {
    // No link-local addresses: no router solicitations or MLD reports on kout.
    await writeSysctl('net.ipv6.conf.default.addr_gen_mode', '1', where);
    await writeSysctl('net.ipv6.conf.all.addr_gen_mode', '1', where);
    for (const dev of [TUN_IN, TUN_OUT]) {
      await ip(['tuntap', 'add', 'dev', dev, 'mode', 'tun'], where);
      await ip(['link', 'set', 'dev', dev, 'mtu', TUN_MTU, 'up'], where);
    }
    // The namespace's own packets (MLD reports once forwarding joins the
    // all-routers group, ICMP errors) would pass for answers: keep them off kout.
    await nftApply(QUIET_RULESET, where);
    if (path === 'netdev') await nftApply(netdevRuleset(rules), where);
    else await prepareForwarding(rules, where);

    const job = {
      input: TUN_IN,
      output: TUN_OUT,
      packets: packets.map((p) => Buffer.from(p).toString('hex')),
      probe: Buffer.from(PROBE_PACKET).toString('hex'),
      settle_ms: options.settleMs ?? 100,
    };
    const out = await runCommand('ip', ['netns', 'exec', netns, PYTHON, relayScript()], { input: JSON.stringify(job) });
    const raw = JSON.parse(out) as Array<{ output: string | null; extra: string[]; error?: string }>;
    return raw.map((r, k) => toResult(r, packets[k]!, path));
  } finally {
    await deleteNamespace(netns);
  }
}

const QUIET_RULESET = [
  'table inet l3dsr_kernel_quiet {',
  '  chain out {',
  '    type filter hook output priority 0;',
  `    oifname "${TUN_OUT}" drop`,
  '  }',
  '}',
  '',
].join('\n');

function netdevRuleset(rules: readonly KernelRule[]): string {
  return [
    `table netdev ${TABLE} {`,
    '  chain rewrite {',
    `    type filter hook ingress device "${TUN_IN}" priority 0;`,
    ...rules.map((r) => `    ${ruleText(r)}`),
    `    fwd to "${TUN_OUT}"`,
    '  }',
    '}',
    '',
  ].join('\n');
}

async function prepareForwarding(rules: readonly KernelRule[], where: Where): Promise<void> {
  const ruleset = ([4, 6] as const).map((family) => [
    `table ${family === 4 ? 'ip' : 'ip6'} ${TABLE} {`,
    '  chain pre {',
    '    type filter hook prerouting priority mangle;',
    ...rules.filter((r) => r.family === family).map((r) => `    ${ruleText(r)}`),
    '  }',
    '}',
    '',
  ].join('\n')).join('');
  await nftApply(ruleset, where);
  await writeSysctl('net.ipv4.ip_forward', '1', where);
  await writeSysctl('net.ipv6.conf.all.forwarding', '1', where);
  for (const key of ['all', 'default', TUN_IN, TUN_OUT]) await writeSysctl(`net/ipv4/conf/${key}/rp_filter`, '0', where);
  await ip(['-4', 'route', 'add', 'default', 'dev', TUN_OUT], where);
  await ip(['-6', 'route', 'add', 'default', 'dev', TUN_OUT], where);
}

/** `[ip dscp D] [ip daddr PREFIX] [ip dscp set S] ip daddr set VIP`, or the ip6 form. */
function ruleText(r: KernelRule): string {
  const f = r.family === 4 ? 'ip' : 'ip6';
  return [
    ...(r.dscp === undefined ? [] : [`${f} dscp ${r.dscp}`]),
    ...(r.match === undefined ? [] : [`${f} daddr ${r.match}`]),
    ...(r.setDscp === undefined ? [] : [`${f} dscp set ${r.setDscp}`]),
    `${f} daddr set ${r.destination}`,
  ].join(' ');
}

function toResult(r: { output: string | null; extra: string[]; error?: string }, input: Uint8Array, path: KernelPath): KernelResult {
  const notes: string[] = [];
  if (r.error !== undefined) notes.push(`the TUN refused the packet (${r.error})`);
  else if (r.output === null) notes.push('not emitted: the kernel dropped it');
  if (r.extra.length > 0) notes.push(`the kernel also emitted ${r.extra.length} other packet(s): ${r.extra.join(' ')}`);
  let output: Uint8Array | null = r.output === null ? null : new Uint8Array(Buffer.from(r.output, 'hex'));
  if (output !== null && path === 'forward') {
    const undone = undoForwarding(output, input);
    output = undone.packet;
    if (undone.note !== undefined) notes.push(undone.note);
  }
  return notes.length === 0 ? { output } : { output, note: notes.join('; ') };
}

/** Reverses what forwarding did: TTL/hop limit back up by one, IPv4 header checksum back. */
function undoForwarding(packet: Uint8Array, input: Uint8Array): { packet: Uint8Array; note?: string } {
  const out = packet.slice();
  const version = out[0]! >> 4;
  if (version === 6 && out.length >= 40) {
    out[IPV6.HOP_LIMIT] = out[IPV6.HOP_LIMIT]! + 1;
    return { packet: out };
  }
  if (version !== 4 || out.length < 20) return { packet: out, note: 'forward path: not IPv4/IPv6, left as emitted' };
  out[IPV4.TTL] = out[IPV4.TTL]! + 1;
  const stored = out[IPV4.CHECKSUM]! | (out[IPV4.CHECKSUM + 1]! << 8);
  const before = undoIpv4TtlDecrement(stored);
  if (before.length === 0) return { packet: out, note: `forward path: header checksum ${stored} cannot come from ip_decrease_ttl, left as emitted` };
  let chosen = before[0]!;
  let note: string | undefined;
  if (before.length > 1) {
    // Two preimages (0x0000 and 0xFFFF): keep the input's if it was one of them.
    const inputStored = input.length >= 12 ? input[IPV4.CHECKSUM]! | (input[IPV4.CHECKSUM + 1]! << 8) : -1;
    chosen = before.includes(inputStored) ? inputStored : 0xffff;
    note = 'forward path: IPv4 header checksum before the TTL decrement was 0x0000 or 0xFFFF, cannot tell which';
  }
  out[IPV4.CHECKSUM] = chosen & 0xff;
  out[IPV4.CHECKSUM + 1] = chosen >> 8;
  return note === undefined ? { packet: out } : { packet: out, note };
}

/**
 * ip_decrease_ttl() on a little-endian CPU, applied to the checksum as the CPU
 * loads it (byte 10 low, byte 11 high): `c += 1; c += (c >= 0xFFFF); c &= 0xFFFF`.
 * Returns every stored value that maps to `stored`.
 */
export function undoIpv4TtlDecrement(stored: number): number[] {
  const forward = (c: number): number => {
    const sum = c + 1;
    return (sum + (sum >= 0xffff ? 1 : 0)) & 0xffff;
  };
  if (stored >= 2 && stored <= 0xfffe) return [stored - 1];
  // Only 0, 1 (and never 0xFFFF) remain; the search is over two candidates.
  return [0x0000, 0xfffe, 0xffff].filter((c) => forward(c) === stored);
}

/**
 * Proves the path works before the real packets go: unmarked IPv4/UDP,
 * documentation addresses, valid header checksum, TTL high enough to forward.
 */
const PROBE_PACKET = buildPacket({ src: '192.0.2.250', dst: '198.51.100.250', id: 0, dontFragment: true, protocol: PROTO.UDP, transport: udp(0, [9, 9]), checksum: 'zero' });

/** tun_relay.py is not compiled: find it next to this file's source whether run from dist/ or not. */
function relayScript(): string {
  const candidates = ['./tun_relay.py', '../../../test/support/tun_relay.py'].map((p) => fileURLToPath(new URL(p, import.meta.url)));
  const found = candidates.find((p) => existsSync(p));
  if (found === undefined) throw new Error(`tun_relay.py not found (looked at ${candidates.join(', ')})`);
  return found;
}
