// What must hold for every input (docs/semantics.md),
// checked against the oracle (tools/oracle/) and from first principles:
// untouched bytes stay untouched, checksums are recomputed from scratch
// before and after, and nothing outside the packet is written.

import { REASON_COUNT, REASON_NAMES, REASON_SLOT_OVERFLOW, REASON_VERDICTS, VERDICT_COUNT, VERDICT_NAMES } from '../../src/core/abi.generated.js';
import { parseAddress } from '../../src/core/address.js';
import { decodeResult } from '../../src/core/rewriter.js';
import type { PacketResult, Rule } from '../../src/core/types.js';
import { read16 } from '../packets/bytes.js';
import { onesSum } from '../packets/checksum.js';
import { IPV4, transportChecksum, type TransportChecksum } from '../packets/layout.js';
import { oracleRewrite } from '../oracle/oracle.js';
import { findTransport, parseFixedHeader, type ParsedPacket, type TransportInfo } from '../oracle/packet.js';
import { storedChecksum, transportSum } from '../oracle/transport.js';
import { slotContent, type FuzzInput, type Observed } from './harness.js';
import { expectWithVnet, seedError, type SeedPlace, type VnetExpectation } from './vnet.js';

export type ViolationKind =
  | 'trap' | 'write-outside-packet' | 'bad-result-word' | 'verdict-mismatch' | 'build-mismatch'
  | 'counter-mismatch' | 'untouchable-changed' | 'length-changed' | 'wrong-destination' | 'wrong-dscp'
  | 'ecn-changed' | 'unexpected-byte-changed' | 'checksum-broken' | 'checksum-healed' | 'checksum-error-changed'
  | 'checksum-zero-written' | 'oracle-output-mismatch';

export interface Violation {
  kind: ViolationKind;
  detail: string;
}

/** Tallies that show the checks had something to bite on. */
export interface CheckStats {
  verdicts: Record<string, number>;
  /** Rewritten packets whose transport checksum was updated and verified before/after. */
  transportChecked: number;
  /** ...of which the checksum was valid before. */
  transportValidBefore: number;
  /** Rewritten packets whose updated checksum came out 0xFFFF (the zero case or a true 0xFFFF). */
  checksumFFFF: number;
  /** Rewritten vnet-mode packets whose NEEDS_CSUM seed was updated and verified. */
  seedsChecked: number;
}

export function newCheckStats(): CheckStats {
  return { verdicts: {}, transportChecked: 0, transportValidBefore: 0, checksumFFFF: 0, seedsChecked: 0 };
}

function hex(b: Uint8Array, max = 64): string {
  const s = Buffer.from(b.subarray(0, max)).toString('hex');
  return b.length > max ? `${s}...` : s;
}

function describe(r: PacketResult): string {
  return `${r.verdict}${r.reason ? `/${r.reason}` : ''}${r.rule !== undefined ? ` rule ${r.rule}` : ''}`;
}

function firstDifference(a: Uint8Array, b: Uint8Array): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) if (a[i] !== b[i]) return i;
  return a.length === b.length ? -1 : n;
}

/** The result word is one the ABI can produce: known verdict, a reason of that verdict. */
function checkWord(word: number): Violation | undefined {
  const verdict = word & 0xff;
  const reason = (word >>> 8) & 0xff;
  if (verdict >= VERDICT_COUNT || reason >= REASON_COUNT) return { kind: 'bad-result-word', detail: `result word 0x${word.toString(16)}: verdict ${verdict}, reason ${reason} out of range` };
  const owner = REASON_VERDICTS[reason];
  const name = VERDICT_NAMES[verdict];
  // No reason goes with passed and rewritten; every other reason belongs to one verdict.
  const fits = owner === null ? name === 'passed' || name === 'rewritten' : owner === name;
  if (!fits) return { kind: 'bad-result-word', detail: `result word 0x${word.toString(16)}: reason ${REASON_NAMES[reason]} with verdict ${name}` };
  return undefined;
}

/** The two builds must agree on everything they report about an input. */
export function compareBuilds(release: Observed, coverage: Observed): Violation | undefined {
  if (release.word !== coverage.word || release.length !== coverage.length || firstDifference(release.output, coverage.output) >= 0 || release.tailChange !== coverage.tailChange) {
    return {
      kind: 'build-mismatch',
      detail: `release ${describe(decodeResult(release.word))} length ${release.length} -> ${hex(release.output)}; `
        + `coverage ${describe(decodeResult(coverage.word))} length ${coverage.length} -> ${hex(coverage.output)}`,
    };
  }
  return undefined;
}

/** Everything that must hold for one input's outcome on one core. */
export function checkOutcome(input: FuzzInput, obs: Observed, rules: readonly Rule[], stats?: CheckStats): Violation[] {
  const out: Violation[] = [];
  const content = slotContent(input);
  if (obs.tailChange >= 0) out.push({ kind: 'write-outside-packet', detail: `slot byte ${obs.tailChange} (the input is ${content.length} bytes) changed` });
  const bad = checkWord(obs.word);
  if (bad) return [...out, bad];
  const got = decodeResult(obs.word);
  if (stats) stats.verdicts[got.verdict] = (stats.verdicts[got.verdict] ?? 0) + 1;

  if (input.descriptor) {
    if (got.verdict !== 'malformed' || got.reason !== REASON_NAMES[REASON_SLOT_OVERFLOW] || got.rule !== undefined) {
      out.push({ kind: 'verdict-mismatch', detail: `descriptor ${input.descriptor}: expected malformed/slot-overflow, got ${describe(got)}` });
    }
    // The bytes sit in the slot the harness gave the input, which the core must not have touched either way.
    const changed = firstDifference(content, obs.output);
    if (changed >= 0) out.push({ kind: 'untouchable-changed', detail: `descriptor ${input.descriptor}: slot byte ${changed} changed` });
    return out;
  }

  const p = input.bytes;
  const headerBytes = input.vnet?.length ?? 0;
  const after = obs.output.subarray(headerBytes);
  let expected: VnetExpectation;
  if (input.vnet) {
    const changed = firstDifference(input.vnet, obs.output.subarray(0, headerBytes));
    if (changed >= 0) out.push({ kind: 'untouchable-changed', detail: `virtio-net header byte ${changed} changed` });
    expected = expectWithVnet(input.vnet, p, rules);
  } else {
    expected = oracleRewrite(p, rules);
  }
  if (expected.verdict !== got.verdict || expected.reason !== got.reason || expected.rule !== got.rule) {
    out.push({ kind: 'verdict-mismatch', detail: `${input.vnet ? 'expected (vnet mode)' : 'oracle says'} ${describe(expected)}, core says ${describe(got)}` });
  }

  const wantLength = got.verdict === 'dropped' ? 0 : content.length;
  if (obs.length !== wantLength) out.push({ kind: 'length-changed', detail: `${got.verdict}: batch length ${obs.length}, expected ${wantLength}` });

  if (got.verdict !== 'rewritten') {
    const changed = firstDifference(p, after);
    if (changed >= 0) out.push({ kind: 'untouchable-changed', detail: `${got.verdict} packet changed at byte ${changed}: ${hex(p)} -> ${hex(after)}` });
    return out;
  }

  if (got.rule === undefined || got.rule >= rules.length) return [...out, { kind: 'bad-result-word', detail: `rewritten without a valid rule index (${got.rule})` }];
  // A seed the core rightly left alone stays off the list of fields that may change.
  const seed = expected.verdict === 'rewritten' ? expected.seed : undefined;
  out.push(...checkRewrite(p, after, rules[got.rule], stats, seed));
  if (expected.verdict === got.verdict) {
    // The oracle fixes a full checksum where the vnet mode updates a seed; the seed is checked above.
    const want = expected.output.slice();
    if (seed) want.set(after.subarray(seed.field, seed.field + 2), seed.field);
    const at = firstDifference(want, after);
    if (at >= 0) out.push({ kind: 'oracle-output-mismatch', detail: `first difference at byte ${at}: oracle ${hex(expected.output)}, core ${hex(after)}` });
  }
  return out;
}

const parsedAddresses = new Map<string, Uint8Array>();

function addressBytes(text: string): Uint8Array {
  let bytes = parsedAddresses.get(text);
  if (bytes === undefined) {
    const a = parseAddress(text);
    if (typeof a === 'string') throw new Error(`rule destination ${text} does not parse: ${a}`);
    bytes = a.bytes;
    parsedAddresses.set(text, bytes);
  }
  return bytes;
}

/** Where the transport checksum is and whether the rewrite must update it. */
function transportFix(p: Uint8Array, h: ParsedPacket): { t: TransportInfo; c: TransportChecksum } | undefined {
  const t = findTransport(p, h);
  if ('malformed' in t || t.fragment === 'non-first' || t.opaque || t.routingPending) return undefined;
  const c = transportChecksum(h.family, t.protocol);
  if (!c || t.length < c.minBytes) return undefined;
  if (c.zeroIsNone && storedChecksum(p, t, c) === 0) return undefined;
  return { t, c };
}

function dscpAndEcn(p: Uint8Array, family: 4 | 6): [number, number] {
  const tc = family === 4 ? p[1] : ((p[0] & 0x0f) << 4) | (p[1] >> 4);
  return [tc >> 2, tc & 3];
}

/**
 * A rewritten packet: the rule's destination, the DSCP the rule says with
 * ECN kept, no other byte changed but the checksums, and each checksum's
 * sum (recomputed from scratch) exactly what it was: valid stays valid,
 * wrong stays exactly as wrong.
 */
function checkRewrite(before: Uint8Array, after: Uint8Array, rule: Rule, stats?: CheckStats, seed?: SeedPlace): Violation[] {
  const out: Violation[] = [];
  const h = parseFixedHeader(before);
  if ('malformed' in h) return [{ kind: 'verdict-mismatch', detail: `rewritten, but the packet does not parse: ${h.malformed}` }];
  if (after.length !== before.length) return [{ kind: 'length-changed', detail: `output ${after.length} bytes, input ${before.length}` }];

  const dest = addressBytes(rule.destination);
  const gotDest = after.subarray(h.dstAt, h.dstAt + h.addrLen);
  if (firstDifference(dest, gotDest) >= 0) out.push({ kind: 'wrong-destination', detail: `destination ${hex(gotDest)}, rule ${rule.origin} says ${rule.destination}` });

  const [dscpBefore, ecnBefore] = dscpAndEcn(before, h.family);
  const [dscpAfter, ecnAfter] = dscpAndEcn(after, h.family);
  const wantDscp = rule.setDscp ?? dscpBefore;
  if (dscpAfter !== wantDscp) out.push({ kind: 'wrong-dscp', detail: `DSCP ${dscpAfter} after, expected ${wantDscp}` });
  if (ecnAfter !== ecnBefore) out.push({ kind: 'ecn-changed', detail: `ECN ${ecnBefore} -> ${ecnAfter}` });

  const fix = seed ? undefined : transportFix(before, h);
  const l4Field = seed ? seed.field : fix ? fix.t.offset + fix.c.field : -2;
  // Bytes a rewrite may change: the destination, the DSCP's byte(s), the checksum fields.
  const mayChange = (i: number) => (i >= h.dstAt && i < h.dstAt + h.addrLen)
    || (h.family === 4 ? i === 1 || i === IPV4.CHECKSUM || i === IPV4.CHECKSUM + 1 : i <= 1)
    || i === l4Field || i === l4Field + 1;
  for (let i = 0; i < before.length; i++) {
    if (before[i] !== after[i] && !mayChange(i)) {
      out.push({ kind: 'unexpected-byte-changed', detail: `byte ${i} changed 0x${before[i].toString(16)} -> 0x${after[i].toString(16)}` });
      break;
    }
  }
  // Version, flow label and the IPv6 bits next to the traffic class are not DSCP.
  if (h.family === 6 && ((before[0] ^ after[0]) & 0xf0 || (before[1] ^ after[1]) & 0x0f)) {
    out.push({ kind: 'unexpected-byte-changed', detail: `IPv6 version/flow label bits changed: ${hex(before.subarray(0, 4))} -> ${hex(after.subarray(0, 4))}` });
  }

  if (h.family === 4) {
    const v = sumCheck('IPv4 header', onesSum(before.subarray(0, h.headerLength)), onesSum(after.subarray(0, h.headerLength)), read16(after, IPV4.CHECKSUM));
    if (v) out.push(v);
    if (read16(after, IPV4.CHECKSUM) === 0xffff && stats) stats.checksumFFFF++;
  }
  if (seed) {
    const was = seedError(before, seed);
    const now = seedError(after, seed);
    if (was !== now) {
      out.push({
        kind: was === 0 ? 'checksum-broken' : now === 0 ? 'checksum-healed' : 'checksum-error-changed',
        detail: `${seed.c.name} NEEDS_CSUM seed off the pseudo-header sum by 0x${was.toString(16)} before, 0x${now.toString(16)} after`,
      });
    }
    if (stats) stats.seedsChecked++;
  }
  if (fix) {
    const field = fix.t.offset + fix.c.field;
    const sumBefore = transportSum(before, h, fix.t);
    const v = sumCheck(fix.c.name, sumBefore, transportSum(after, h, fix.t), read16(after, field));
    if (v) out.push(v);
    if (stats) {
      stats.transportChecked++;
      if (sumBefore === 0xffff) stats.transportValidBefore++;
      if (read16(after, field) === 0xffff) stats.checksumFFFF++;
    }
  }
  return out;
}

function sumCheck(name: string, before: number, after: number, field: number): Violation | undefined {
  if (field === 0) return { kind: 'checksum-zero-written', detail: `${name} checksum updated to 0x0000 (must be written as 0xFFFF)` };
  if (before === after) return undefined;
  if (before === 0xffff) return { kind: 'checksum-broken', detail: `${name} checksum valid before, sum 0x${after.toString(16)} after` };
  if (after === 0xffff) return { kind: 'checksum-healed', detail: `${name} checksum wrong before (sum 0x${before.toString(16)}), valid after: the update was not incremental` };
  return { kind: 'checksum-error-changed', detail: `${name} checksum sum 0x${before.toString(16)} before, 0x${after.toString(16)} after` };
}
