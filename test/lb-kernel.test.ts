// The balancer's rewrite against the Linux kernel: a VIP with one backend
// is what nftables does with `ip daddr VIP ip dscp set D ip daddr set RIP`
// (and the ip6 form), so the same generated packets as the real server's
// kernel comparison (test/core-kernel.test.ts, test/support/arbitraries.ts)
// go through the core's balancer and through that nftables rule set
// (test/support/kernel-nft.ts), and the bytes must be identical wherever
// the balancer rewrites, or passes a packet that is not for a VIP. Where
// docs/lb.md departs from the kernel (a packet the balancer drops or passes
// to a VIP, the real server's departures of docs/semantics.md), it is left
// out and counted.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createBalancer } from '../src/core/balancer.js';
import type { LbVip } from '../src/lb/types.js';
import { findTransport, parseFixedHeader } from '../tools/oracle/packet.js';
import { addressText } from '../src/core/address.js';
import { PROTO } from '../tools/packets/layout.js';
import { packet } from './support/arbitraries.js';
import { compareWithKernel, rewriteWithKernel, type KernelRule } from './support/kernel-nft.js';
import { privileged } from './support/privilege.js';

const SAMPLES = 1500;

/** VIPs among the generated packets' destinations, each with one backend and its own DSCP. */
const ONE_BACKEND = [
  { vip: '203.0.113.10', backend: '198.51.100.50', dscp: 1 },
  { vip: '198.51.100.2', backend: '198.51.100.60', dscp: 46 },
  { vip: '2001:db8:203::10', backend: '2001:db8:198::50', dscp: 2 },
  { vip: '2001:db8:199::2', backend: '2001:db8:198::60', dscp: 63 },
];

const vips: LbVip[] = ONE_BACKEND.map(({ vip, backend, dscp }, i) => {
  const family = vip.includes(':') ? 6 : 4;
  return {
    name: `v${i}`, family, vip, dscp, ports: null, hash: '5-tuple', tableSize: 13,
    backends: [{ address: backend, weight: 1, drain: false, origin: 'test' }],
    check: { type: 'none' }, intervalMs: 1000, timeoutMs: 1000, rise: 2, fall: 2, origin: 'test',
  };
});

/** Why the kernel is not the reference for this packet, or undefined when it is. */
function kernelDeparts(p: Uint8Array, verdict: string): string | undefined {
  if (verdict === 'dropped') return 'dropped by the balancer (truncated, an unreadable ICMP error): the kernel rewrites it';
  if (verdict === 'malformed') return 'malformed: not parsed by either';
  const h = parseFixedHeader(p);
  if ('malformed' in h) return 'malformed';
  const dst = addressText(p.subarray(h.dstAt, h.dstAt + h.addrLen));
  if (verdict === 'passed') {
    return ONE_BACKEND.some((v) => v.vip === dst) ? 'passed to a VIP (ICMPv6 of the link, a source route through the VIP): the kernel rewrites it' : undefined;
  }
  const t = findTransport(p, h);
  if ('malformed' in t) return 'broken extension chain';
  if (t.protocol === PROTO.DCCP && t.fragment !== 'non-first') return 'DCCP: the kernel does not fix its checksum';
  if (h.family === 4 && t.protocol === PROTO.ICMPV6 && t.fragment !== 'non-first') return 'IPv4 protocol 58: the kernel applies the ICMPv6 rule';
  return undefined;
}

describe('the core balancer against the kernel (nftables payload set)', privileged('runs nftables in a network namespace with TUN devices'), () => {
  it(`${SAMPLES} generated packets: byte-identical wherever docs/lb.md follows the kernel`, async (t) => {
    const lb = await createBalancer({ vips, connections: 1024, tableSeed: 0, slotSize: 512, slotCount: 64 });
    const kernelRules: KernelRule[] = ONE_BACKEND.map(({ vip, backend, dscp }) => {
      const family = vip.includes(':') ? 6 as const : 4 as const;
      return { family, match: `${vip}/${family === 4 ? 32 : 128}`, setDscp: dscp, destination: backend };
    });
    const inputs = fc.sample(packet, { numRuns: SAMPLES, seed: 20261126 });
    const kernel = await rewriteWithKernel(inputs, kernelRules);

    const { compared, rewritten, skipped } = compareWithKernel(inputs, kernel, (p) => lb.balance(p).verdict, kernelDeparts);
    t.diagnostic(`compared ${compared} packets byte for byte (${rewritten} balanced); left out: ${JSON.stringify(skipped)}`);
    assert.ok(rewritten >= SAMPLES / 4, `only ${rewritten} balanced packets were compared`);
  });
});
