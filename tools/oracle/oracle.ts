// The reference rewriter: the semantics document executed plainly in
// TypeScript, with every checksum recomputed from scratch. Property tests
// and the fuzzer hold the WASM core to it byte for byte.

import { parseAddress } from '../../src/core/address.js';
import type { PacketResult, Rule } from '../../src/core/types.js';
import { write16 } from '../packets/bytes.js';
import { checksumFor, onesSum } from '../packets/checksum.js';
import { transportChecksum } from '../packets/layout.js';
import { findTransport, parseFixedHeader, type ParsedPacket, type TransportInfo } from './packet.js';
import { storedChecksum, transportSum } from './transport.js';

export interface OracleOutcome extends PacketResult {
  /** The packet as it must leave (a copy; the input is not changed). */
  output: Uint8Array;
}

const parsed = new Map<string, Uint8Array>();

function addrBytes(text: string): Uint8Array {
  let bytes = parsed.get(text);
  if (!bytes) {
    const a = parseAddress(text);
    if (typeof a === 'string') throw new Error(`oracle: bad address ${text}`);
    bytes = a.bytes;
    parsed.set(text, bytes);
  }
  return bytes;
}

function prefixContains(rule: Rule, dst: Uint8Array): boolean {
  if (!rule.match) return true;
  const net = addrBytes(rule.match.address);
  for (let bit = 0; bit < rule.match.length; bit++) {
    const m = 0x80 >> (bit & 7);
    if ((dst[bit >> 3] & m) !== (net[bit >> 3] & m)) return false;
  }
  return true;
}

/** The rule that applies: same family and DSCP, longest matching prefix (no prefix = length 0). */
export function findRule(rules: readonly Rule[], family: 4 | 6, dscp: number, dst: Uint8Array): number {
  let best = -1;
  let bestLen = -1;
  rules.forEach((r, i) => {
    if (r.family !== family || r.dscp !== dscp || !prefixContains(r, dst)) return;
    const len = r.match ? r.match.length : 0;
    if (len > bestLen) { best = i; bestLen = len; }
  });
  return best;
}

/** Which checksums the packet carries and whether each is valid, computed from scratch. */
export interface ChecksumReport {
  ipv4Header?: boolean;
  transport?: { name: string; valid: boolean; none: boolean };
}

export function checksumReport(p: Uint8Array): ChecksumReport {
  const h = parseFixedHeader(p);
  if ('malformed' in h) return {};
  const report: ChecksumReport = {};
  if (h.family === 4) report.ipv4Header = onesSum(p.subarray(0, h.headerLength)) === 0xffff;
  const t = findTransport(p, h);
  // Under a pending Routing header the checksum covers the final destination, not this one.
  if ('malformed' in t || !fixesTransport(h, t)) return report;
  const c = transportChecksum(h.family, t.protocol);
  if (!c || t.length < c.minBytes) return report;
  const none = c.zeroIsNone && storedChecksum(p, t, c) === 0;
  report.transport = { name: c.name, none, valid: none || transportSum(p, h, t) === 0xffff };
  return report;
}

/**
 * Recomputes the checksum at `field` from scratch so that the covered data
 * sums to what it summed to before the change (`before`): a valid checksum
 * stays valid, a wrong one stays exactly as wrong.
 */
function refit(out: Uint8Array, field: number, sumWithout: number, before: number): void {
  write16(out, field, checksumFor(sumWithout, before));
}

export function oracleRewrite(packet: Uint8Array, rules: readonly Rule[]): OracleOutcome {
  const out = packet.slice();
  const h = parseFixedHeader(packet);
  if ('malformed' in h) return { verdict: 'malformed', reason: h.malformed, output: out };
  const dst = packet.subarray(h.dstAt, h.dstAt + h.addrLen);
  const ruleIndex = findRule(rules, h.family, h.dscp, dst);
  if (ruleIndex < 0) return { verdict: 'passed', output: out };
  const rule = rules[ruleIndex];

  const t = findTransport(packet, h);
  if ('malformed' in t) return { verdict: 'malformed', reason: t.malformed, output: out };
  const c = fixesTransport(h, t) ? transportChecksum(h.family, t.protocol) : undefined;
  if (c && t.length < c.minBytes) return { verdict: 'dropped', reason: `${c.name}-truncated`, rule: ruleIndex, output: out };
  const fixL4 = c !== undefined && !(c.zeroIsNone && storedChecksum(packet, t, c) === 0);

  const headerBefore = h.family === 4 ? onesSum(packet.subarray(0, h.headerLength)) : 0;
  const l4Before = fixL4 ? transportSum(packet, h, t) : 0;

  out.set(addrBytes(rule.destination), h.dstAt);
  if (rule.setDscp !== undefined) setDscp(out, h, rule.setDscp);
  if (h.family === 4) {
    write16(out, 10, 0);
    refit(out, 10, onesSum(out.subarray(0, h.headerLength)), headerBefore);
  }
  if (fixL4 && c) {
    const field = t.offset + c.field;
    write16(out, field, 0);
    refit(out, field, transportSum(out, h, t), l4Before);
  }
  return { verdict: 'rewritten', rule: ruleIndex, output: out };
}

function fixesTransport(h: ParsedPacket, t: TransportInfo): boolean {
  if (t.fragment === 'non-first') return false;
  if (h.family === 6 && (t.opaque || t.routingPending)) return false;
  return true;
}

function setDscp(out: Uint8Array, h: ParsedPacket, dscp: number): void {
  if (h.family === 4) {
    out[1] = (dscp << 2) | (out[1] & 0x03);
  } else {
    const tc = (dscp << 2) | (((out[1] >> 4) & 0x03));
    out[0] = (out[0] & 0xf0) | (tc >> 4);
    out[1] = ((tc & 0x0f) << 4) | (out[1] & 0x0f);
  }
}
