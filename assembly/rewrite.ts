// What happens to one packet: parse the fixed header, look up a rule,
// and rewrite the destination in place with incremental checksum fixes
// (docs/semantics.md is the specification). The decisions and the rewrite
// itself are exported for the balancer (lb.ts), which rewrites a packet the
// way a rule with a new DSCP does.

import {
  VERDICT_PASSED, VERDICT_REWRITTEN, VERDICT_MALFORMED, VERDICT_DROPPED,
  REASON_NONE, REASON_BAD_VERSION, REASON_TOO_SHORT, REASON_IPV6_EXTENSION_CHAIN,
  REASON_TCP_TRUNCATED, REASON_UDP_TRUNCATED, REASON_UDPLITE_TRUNCATED,
  REASON_DCCP_TRUNCATED, REASON_ICMPV6_TRUNCATED, REASON_VNET_INCONSISTENT,
  RESULT_REASON_SHIFT, RESULT_RULE_SHIFT,
} from "./abi.generated";
import { be16, fold, negSum32, negSum128, updateChecksum, updatePartialSum } from "./checksum";
import * as ipv4 from "./ipv4";
import * as ipv6 from "./ipv6";
import * as l4 from "./l4";
import {
  FIXED_MALFORMED, fixed4, fixed6, walk6, WALK_BROKEN, WALK_NEXT_SHIFT, WALK_NON_FIRST, WALK_OFFSET_MASK, WALK_OPAQUE,
  WALK_ROUTING_PENDING,
} from "./parse";
import * as virtio from "./virtio";
import { rule, lookup4, lookup6 } from "./rules";

/** A result word: the verdict, the reason, and the rule's (or the balancer's section's) index. */
// @ts-ignore: decorator
@inline export function result(verdict: u32, reason: u32, ruleIndex: i32): u32 {
  return verdict | (reason << RESULT_REASON_SHIFT) | (<u32>(ruleIndex + 1) << RESULT_RULE_SHIFT);
}

// Sentinel: the transport checksum needs no change.
export const NO_L4: u32 = 0xffffffff;
/** Set in what checksumOffset answers for a transport header too short to fix; the low bits are the reason. */
export const L4_TRUNCATED: u32 = 0x10000;

/**
 * Where the pseudo-header checksum of protocol `proto` sits in a transport
 * header `th` of `l4len` bytes: its offset from the transport header, NO_L4 when
 * the protocol has none or a zero UDP checksum means "none", or a
 * truncation reason (encoded as 0x10000 | reason) when too short to fix.
 */
// @ts-ignore: decorator
@inline export function checksumOffset(proto: u32, th: usize, l4len: u32, v6: bool): u32 {
  switch (proto) {
    case l4.TCP:
      return l4len < l4.TCP_MIN_BYTES ? L4_TRUNCATED | REASON_TCP_TRUNCATED : <u32>l4.TCP_CHECKSUM;
    case l4.UDP:
      if (l4len < l4.UDP_MIN_BYTES) return L4_TRUNCATED | REASON_UDP_TRUNCATED;
      return load<u16>(th, l4.UDP_CHECKSUM) == 0 ? NO_L4 : <u32>l4.UDP_CHECKSUM;
    case l4.UDPLITE:
      return l4len < l4.UDP_MIN_BYTES ? L4_TRUNCATED | REASON_UDPLITE_TRUNCATED : <u32>l4.UDP_CHECKSUM;
    case l4.DCCP:
      return l4len < l4.DCCP_MIN_BYTES ? L4_TRUNCATED | REASON_DCCP_TRUNCATED : <u32>l4.DCCP_CHECKSUM;
    case l4.ICMPV6:
      if (!v6) return NO_L4;
      return l4len < l4.ICMPV6_MIN_BYTES ? L4_TRUNCATED | REASON_ICMPV6_TRUNCATED : <u32>l4.ICMPV6_CHECKSUM;
  }
  return NO_L4;
}

// partialChecksum() answers with the offset of a seed to update (< 0x10000),
// or one of these.
export const NOT_PARTIAL: u32 = 0x40000;
export const PARTIAL_INCONSISTENT: u32 = 0x20000;

/**
 * For a packet whose virtio-net header says NEEDS_CSUM, the L4 checksum
 * field holds the pseudo-header sum that the kernel finishes later, at
 * csum_start + csum_offset. Our own walk decided `csum` (the field's offset
 * in the transport header at `th`, or NO_L4); the header must agree with
 * it, or the seed would be patched in the wrong place.
 */
// @ts-ignore: decorator
@inline export function partialChecksum(vnet: usize, th: u32, csum: u32, udp: bool, fixable: bool): u32 {
  if (vnet == 0 || (<u32>load<u8>(vnet, virtio.FLAGS) & virtio.F_NEEDS_CSUM) == 0) return NOT_PARTIAL;
  // A UDP seed of zero is a seed, not "no checksum": the sum is still to be made.
  const expected = csum == NO_L4 && udp && fixable ? <u32>l4.UDP_CHECKSUM : csum;
  // Nothing of ours in the seed (no pseudo-header, or a pending Routing header).
  if (expected == NO_L4) return NOT_PARTIAL;
  // Our walk found the transport header and checked its length: the header must point there.
  if (<u32>load<u16>(vnet, virtio.CSUM_START) != th || <u32>load<u16>(vnet, virtio.CSUM_OFFSET) != expected) return PARTIAL_INCONSISTENT;
  return expected;
}

/**
 * Rewrites the packet of `len` bytes at `p` in place; returns its result
 * word. `vnet` points at the packet's virtio-net header, or is 0.
 */
// @ts-ignore: decorator
@inline export function rewritePacket(p: usize, len: u32, vnet: usize): u32 {
  if (len < 1) return result(VERDICT_MALFORMED, REASON_TOO_SHORT, -1);
  const version = <u32>load<u8>(p) >> 4;
  if (version == 4) return rewrite4(p, len, vnet);
  if (version == 6) return rewrite6(p, len, vnet);
  return result(VERDICT_MALFORMED, REASON_BAD_VERSION, -1);
}

/**
 * Writes the new IPv4 destination (`dest`, as loaded from its 4 bytes) and,
 * if `setDscp` >= 0, the DSCP, and updates the header checksum and the
 * transport checksum at `th + csum` (a NEEDS_CSUM seed when `partial`; none
 * when csum is NO_L4). Everything that could refuse the packet is decided.
 */
// @ts-ignore: decorator
@inline export function apply4(p: usize, th: usize, csum: u32, partial: bool, dest: u32, destSum: u64, setDscp: i32): void {
  const dst = p + ipv4.DST;
  const addressDelta = fold(negSum32(dst) + destSum);
  store<u32>(dst, dest);
  let headerDelta = addressDelta;
  if (setDscp >= 0) {
    // The TOS byte shares a 16-bit word with version/IHL: fold that word's change.
    const before = ~<u32>load<u16>(p) & 0xffff;
    store<u8>(p + ipv4.TOS, <u8>((setDscp << 2) | (load<u8>(p, ipv4.TOS) & 0x03)));
    headerDelta = fold(<u64>headerDelta + before + <u32>load<u16>(p));
  }
  updateChecksum(p + ipv4.CHECKSUM, headerDelta);
  if (partial) updatePartialSum(th + csum, addressDelta);
  else if (csum != NO_L4) updateChecksum(th + csum, addressDelta);
}

/** The same for IPv6 (no header checksum): `dest0` and `dest1` are the address's two halves as loaded. */
// @ts-ignore: decorator
@inline export function apply6(p: usize, th: usize, csum: u32, partial: bool, dest0: u64, dest1: u64, destSum: u64, setDscp: i32): void {
  const dst = p + ipv6.DST;
  const addressDelta = fold(negSum128(dst) + destSum);
  store<u64>(dst, dest0);
  store<u64>(dst, dest1, 8);
  if (setDscp >= 0) {
    // Traffic class = low nibble of byte 0 and high nibble of byte 1; DSCP is its top six bits.
    const d = <u32>setDscp;
    store<u8>(p, <u8>((load<u8>(p) & 0xf0) | (d >> 2)));
    store<u8>(p + 1, <u8>((load<u8>(p, 1) & 0x3f) | ((d & 0x03) << 6)));
  }
  if (partial) updatePartialSum(th + csum, addressDelta);
  else if (csum != NO_L4) updateChecksum(th + csum, addressDelta);
}

// @ts-ignore: decorator
@inline function rewrite4(p: usize, len: u32, vnet: usize): u32 {
  const fixed = fixed4(p, len);
  if ((fixed & FIXED_MALFORMED) != 0) return result(VERDICT_MALFORMED, fixed & 0xff, -1);
  const ihl = fixed & 0xff;
  const total = fixed >> 8;

  const r = lookup4(ipv4.dscp(p), p + ipv4.DST);
  if (r < 0) return result(VERDICT_PASSED, REASON_NONE, -1);
  const rec = rule(r);

  // Decide everything that can refuse the packet before changing a byte.
  const th = p + ihl;
  let csum = NO_L4;
  if ((be16(p + ipv4.FLAGS_FRAGMENT) & ipv4.FRAGMENT_OFFSET_MASK) == 0) {
    csum = checksumOffset(<u32>load<u8>(p, ipv4.PROTOCOL), th, total - ihl, false);
    if (csum != NO_L4 && (csum & L4_TRUNCATED) != 0) {
      return result(VERDICT_DROPPED, csum & 0xffff, r);
    }
  }
  const partial = partialChecksum(vnet, ihl, csum, <u32>load<u8>(p, ipv4.PROTOCOL) == l4.UDP,
    (be16(p + ipv4.FLAGS_FRAGMENT) & ipv4.FRAGMENT_OFFSET_MASK) == 0);
  if (partial == PARTIAL_INCONSISTENT) return result(VERDICT_DROPPED, REASON_VNET_INCONSISTENT, r);
  if (partial != NOT_PARTIAL) csum = partial;

  apply4(p, th, csum, partial != NOT_PARTIAL, <u32>rec.dest0, rec.destSum, rec.setDscp);
  rec.packets += 1;
  rec.bytes += total;
  return result(VERDICT_REWRITTEN, REASON_NONE, r);
}

// @ts-ignore: decorator
@inline function rewrite6(p: usize, len: u32, vnet: usize): u32 {
  const end = fixed6(p, len);
  if ((end & FIXED_MALFORMED) != 0) return result(VERDICT_MALFORMED, end & 0xff, -1);

  const r = lookup6(ipv6.dscp(p), p + ipv6.DST);
  if (r < 0) return result(VERDICT_PASSED, REASON_NONE, -1);
  const rec = rule(r);

  const walk = walk6(p, end);
  if (walk == WALK_BROKEN) return result(VERDICT_MALFORMED, REASON_IPV6_EXTENSION_CHAIN, -1);
  const off = walk & WALK_OFFSET_MASK;
  const next = (walk >> WALK_NEXT_SHIFT) & 0xff;
  const fixL4 = (walk & (WALK_ROUTING_PENDING | WALK_NON_FIRST | WALK_OPAQUE)) == 0;

  const th = p + off;
  let csum = NO_L4;
  if (fixL4) {
    csum = checksumOffset(next, th, end - off, true);
    if (csum != NO_L4 && (csum & L4_TRUNCATED) != 0) {
      return result(VERDICT_DROPPED, csum & 0xffff, r);
    }
  }
  const partial = partialChecksum(vnet, off, csum, next == l4.UDP, fixL4);
  if (partial == PARTIAL_INCONSISTENT) return result(VERDICT_DROPPED, REASON_VNET_INCONSISTENT, r);
  if (partial != NOT_PARTIAL) csum = partial;

  apply6(p, th, csum, partial != NOT_PARTIAL, rec.dest0, rec.dest1, rec.destSum, rec.setDscp);
  rec.packets += 1;
  rec.bytes += end;
  return result(VERDICT_REWRITTEN, REASON_NONE, r);
}
