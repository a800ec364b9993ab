// The virtio-net header mode of the core (setVnetHeaderBytes): each slot
// holds a struct virtio_net_hdr, then the packet. What the fuzzer expects
// there, stated from the semantics rather than from the core's code:
//
// - The header itself is never changed. A slot shorter than the header is
//   malformed (vnet-header).
// - Without NEEDS_CSUM the packet is handled exactly as without a header.
// - With NEEDS_CSUM (docs/semantics.md: TSO/GSO packets from a TUN with IFF_VNET_HDR)
//   the transport checksum field holds a seed: the folded, uncomplemented
//   pseudo-header sum the kernel finishes later from csum_start. Where a
//   plain packet would get its transport checksum fixed (or would, but for
//   UDP's zero "none", which a seed is not), the header must point at that
//   same field — else the packet is dropped (vnet-inconsistent), since the
//   seed would be patched in the wrong place — and the seed is updated so
//   that it stays exactly as right (or as wrong) against the new
//   pseudo-header. Where no pseudo-header fix applies, the header does not
//   matter.

import type { Rule } from '../../src/core/types.js';
import { VNET_CSUM_OFFSET, VNET_CSUM_START, VNET_F_NEEDS_CSUM, VNET_FLAGS, VNET_HEADER_BYTES } from '../../src/tun/abi.generated.js';
import { pseudoHeaderSum, read16 } from '../oracle/checksum.js';
import { oracleRewrite, type OracleOutcome } from '../oracle/oracle.js';
import { findTransport, parseFixedHeader, type ParsedPacket, type TransportInfo } from '../oracle/packet.js';
import { transportChecksum, type TransportChecksum } from '../oracle/transport.js';

// struct virtio_net_hdr, as the TUN delivers it (its layout is generated
// with the addon's and the core's): the fuzzer runs the core with that header.
export { VNET_F_NEEDS_CSUM, VNET_HEADER_BYTES };

export interface VnetFields {
  flags: number;
  csumStart: number;
  csumOffset: number;
}

export function vnetHeader(f: VnetFields): Uint8Array {
  const b = new Uint8Array(VNET_HEADER_BYTES);
  const v = new DataView(b.buffer);
  b[VNET_FLAGS] = f.flags;
  v.setUint16(VNET_CSUM_START, f.csumStart & 0xffff, true);
  v.setUint16(VNET_CSUM_OFFSET, f.csumOffset & 0xffff, true);
  return b;
}

export function readVnet(h: Uint8Array): VnetFields {
  const v = new DataView(h.buffer, h.byteOffset, h.byteLength);
  return { flags: h[VNET_FLAGS], csumStart: v.getUint16(VNET_CSUM_START, true), csumOffset: v.getUint16(VNET_CSUM_OFFSET, true) };
}

/** Where the transport checksum of a rewritten packet sits, if a pseudo-header fix applies there at all. */
export interface SeedPlace {
  h: ParsedPacket;
  t: TransportInfo;
  c: TransportChecksum;
  field: number;
}

export function seedPlace(packet: Uint8Array): SeedPlace | undefined {
  const h = parseFixedHeader(packet);
  if ('malformed' in h) return undefined;
  const t = findTransport(packet, h);
  if ('malformed' in t || t.fragment === 'non-first' || (h.family === 6 && (t.opaque || t.routingPending))) return undefined;
  const c = transportChecksum(h.family, t.protocol);
  if (!c || t.length < c.minBytes) return undefined;
  return { h, t, c, field: t.offset + c.field };
}

/** The pseudo-header sum a correct seed holds. */
export function pseudoSum(packet: Uint8Array, s: SeedPlace): number {
  const { h, t } = s;
  return pseudoHeaderSum(packet.subarray(h.dstAt - h.addrLen, h.dstAt), packet.subarray(h.dstAt, h.dstAt + h.addrLen), t.protocol, t.length);
}

/** How far the stored seed is from the right one, mod 0xFFFF (0: right). */
export function seedError(packet: Uint8Array, s: SeedPlace): number {
  return (read16(packet, s.field) + 0xffff - pseudoSum(packet, s)) % 0xffff;
}

export interface VnetExpectation extends OracleOutcome {
  /** Set when the transport checksum field is a seed the rewrite must update. */
  seed?: SeedPlace;
}

/** What the core must do with `packet` behind virtio-net header `header`. */
export function expectWithVnet(header: Uint8Array, packet: Uint8Array, rules: readonly Rule[]): VnetExpectation {
  if (header.length < VNET_HEADER_BYTES) return { verdict: 'malformed', reason: 'vnet-header', output: packet.slice() };
  const plain = oracleRewrite(packet, rules);
  const f = readVnet(header);
  if ((f.flags & VNET_F_NEEDS_CSUM) === 0 || plain.verdict !== 'rewritten') return plain;
  const seed = seedPlace(packet);
  if (!seed) return plain;
  if (f.csumStart !== seed.t.offset || f.csumOffset !== seed.c.field) {
    return { verdict: 'dropped', reason: 'vnet-inconsistent', rule: plain.rule, output: packet.slice() };
  }
  return { ...plain, seed };
}
