// Bit-exactness against the Linux kernel: the same generated packets go
// through the WASM core and through nftables' own `ip daddr set` /
// `ip6 daddr set` rewrite (test/support/kernel-nft.ts), and the bytes must
// be identical. The cases where the semantics document deliberately departs
// from the kernel are left out here (they are held to recomputed checksums
// by the oracle tests instead), and counted so the test shows what it did.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { createRewriter } from '../src/core/rewriter.js';
import type { Rule } from '../src/core/types.js';
import { findTransport, parseFixedHeader } from '../tools/oracle/packet.js';
import { PROTO } from '../tools/packets/layout.js';
import { packet, RULES } from './support/arbitraries.js';
import { compareWithKernel, rewriteWithKernel, type KernelRule } from './support/kernel-nft.js';
import { privileged } from './support/privilege.js';

const SAMPLES = 1500;

/** Why the kernel is not the reference for this packet, or undefined when it is. */
function kernelDeparts(p: Uint8Array, verdict: string): string | undefined {
  if (verdict === 'dropped') return 'dropped by us (truncated transport): the kernel rewrites or abandons it';
  if (verdict === 'malformed') return 'malformed: not parsed by either';
  const h = parseFixedHeader(p);
  if ('malformed' in h) return 'malformed';
  const t = findTransport(p, h);
  if ('malformed' in t) return 'broken extension chain';
  if (verdict !== 'rewritten') return undefined;
  if (t.protocol === PROTO.DCCP && t.fragment !== 'non-first') return 'DCCP: the kernel does not fix its checksum';
  if (h.family === 6 && t.routingPending) return 'Routing header with segments left: the kernel applies the delta anyway';
  if (h.family === 4 && t.protocol === PROTO.ICMPV6 && t.fragment !== 'non-first') return 'IPv4 protocol 58: the kernel applies the ICMPv6 rule';
  return undefined;
}

describe('the core against the kernel (nftables payload set)', privileged('runs nftables in a network namespace with TUN devices'), () => {
  it(`${SAMPLES} generated packets: byte-identical wherever the semantics follow the kernel`, async (t) => {
    const rw = await createRewriter({ rules: RULES, slotSize: 512, slotCount: 64 });
    const kernelRules: KernelRule[] = rw.rules.map((r: Rule) => ({
      family: r.family, dscp: r.dscp, destination: r.destination,
      ...(r.match ? { match: `${r.match.address}/${r.match.length}` } : {}),
      ...(r.setDscp !== undefined ? { setDscp: r.setDscp } : {}),
    }));
    const inputs = fc.sample(packet, { numRuns: SAMPLES, seed: 20261126 });
    const kernel = await rewriteWithKernel(inputs, kernelRules);

    const { compared, rewritten, skipped } = compareWithKernel(inputs, kernel, (p) => rw.rewrite(p).verdict, kernelDeparts);
    t.diagnostic(`compared ${compared} packets byte for byte (${rewritten} rewritten); left out: ${JSON.stringify(skipped)}`);
    assert.ok(rewritten >= SAMPLES / 4, `only ${rewritten} rewritten packets were compared`);
  });
});
