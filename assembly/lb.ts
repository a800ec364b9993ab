// What the balancer does to one packet (docs/lb.md is the specification,
// tools/oracle/lb.ts its reference model, which this is held to packet for
// packet): find the VIP, read the flow, pick the section, the backend (the
// connection table, else the section's Maglev table), then rewrite the
// destination and the DSCP as a real server's rule with a new DSCP does
// (rewrite.ts's apply4/apply6). Everything that can refuse a packet is
// decided before a byte or a table entry changes.

import {
  VERDICT_PASSED, VERDICT_REWRITTEN, VERDICT_MALFORMED, VERDICT_DROPPED,
  REASON_NONE, REASON_TOO_SHORT, REASON_BAD_VERSION, REASON_IPV6_EXTENSION_CHAIN,
  REASON_TCP_TRUNCATED, REASON_UDP_TRUNCATED, REASON_UDPLITE_TRUNCATED, REASON_DCCP_TRUNCATED,
  REASON_SCTP_TRUNCATED, REASON_ICMP_TRUNCATED, REASON_ICMPV6_TRUNCATED, REASON_ICMP_EMBEDDED,
  REASON_FRAGMENT_AMBIGUOUS, REASON_NO_BACKEND, REASON_VNET_INCONSISTENT,
  LB_EMPTY_SLOT, LB_FLOW_HASH_SEED, LB_FLOW_5_TUPLE, LB_FLOW_3_TUPLE,
  LB_CONNECTION_HIT, LB_CONNECTION_NEW, LB_CONNECTION_MOVED, LB_DETAIL_CONNECTION_SHIFT, LB_DETAIL_FLOW_SHIFT,
} from "./abi.generated";
import { be16 } from "./checksum";
import * as ipv4 from "./ipv4";
import * as ipv6 from "./ipv6";
import * as l4 from "./l4";
import {
  FIXED_MALFORMED, fixed4, fixed6, walk6, WALK_BROKEN, WALK_FIRST_FRAGMENT, WALK_NEXT_SHIFT, WALK_NON_FIRST,
  WALK_OFFSET_MASK, WALK_OPAQUE, WALK_ROUTING_PENDING,
} from "./parse";
import {
  apply4, apply6, checksumOffset, L4_TRUNCATED, NO_L4, NOT_PARTIAL, PARTIAL_INCONSISTENT, partialChecksum, result,
} from "./rewrite";
import * as connections from "./lb-connections";
import * as tables from "./lb-tables";
import { murmur3 } from "./murmur3";

/** The flow key being built, zero-padded to whole words (connections.find compares words). */
const key: usize = memory.data(<i32>connections.KEY_BYTES, 8);
/** Room to move a connection entry within its bucket. */
const entryScratch: usize = memory.data(<i32>connections.ENTRY_BYTES, 8);

/**
 * The last packet's detail word: (backend index + 1) | connection <<
 * LB_DETAIL_CONNECTION_SHIFT | flow << LB_DETAIL_FLOW_SHIFT, 0 where none.
 */
export let detail: u32 = 0;

const NO_SECTION: i32 = -1;
const AMBIGUOUS: i32 = -2;

/**
 * The section of VIP `v` that takes a packet of `protocol` to `port` (-1:
 * no port): the one without a ports list, else the one whose list holds the
 * protocol and port (without a port, the protocol at all), if exactly one
 * does; NO_SECTION or AMBIGUOUS otherwise (docs/lb.md#which-section-takes-a-packet).
 */
// @ts-ignore: decorator
@inline function sectionFor(v: tables.VipRecord, protocol: u32, port: i32): i32 {
  const end = <i32>(v.first + v.count);
  for (let i = <i32>v.first; i < end; i++) if (tables.section(i).rangeCount < 0) return i;
  let found = NO_SECTION;
  for (let i = <i32>v.first; i < end; i++) {
    const s = tables.section(i);
    for (let r = 0; r < s.rangeCount; r++) {
      const range = tables.range(s, r);
      if (range.protocol == protocol && (port < 0 || (<u32>port >= range.from && <u32>port <= range.to))) {
        if (found != NO_SECTION) return AMBIGUOUS;
        found = i;
        break;
      }
    }
  }
  return found;
}

// @ts-ignore: decorator
@inline function isPortProtocol(protocol: u32): bool {
  return protocol == l4.TCP || protocol == l4.UDP || protocol == l4.UDPLITE || protocol == l4.SCTP || protocol == l4.DCCP;
}

/** A port protocol's truncation reason with, above it, the bytes it needs: its ports and the checksum the rewrite fixes. */
// @ts-ignore: decorator
@inline function portNeeds(protocol: u32): u32 {
  if (protocol == l4.TCP) return (l4.TCP_MIN_BYTES << 8) | REASON_TCP_TRUNCATED;
  if (protocol == l4.UDP) return (l4.UDP_MIN_BYTES << 8) | REASON_UDP_TRUNCATED;
  if (protocol == l4.UDPLITE) return (l4.UDP_MIN_BYTES << 8) | REASON_UDPLITE_TRUNCATED;
  if (protocol == l4.DCCP) return (l4.DCCP_MIN_BYTES << 8) | REASON_DCCP_TRUNCATED;
  return (l4.PORT_BYTES << 8) | REASON_SCTP_TRUNCATED;
}

// @ts-ignore: decorator
@inline function isIcmpError(v6: bool, type: u32): bool {
  // ICMP: destination unreachable, time exceeded, parameter problem; ICMPv6: types 1-4.
  return v6 ? type >= 1 && type <= 4 : type == 3 || type == 11 || type == 12;
}

/** ICMPv6 echo request and reply: the informational messages a service answers. */
const ICMPV6_ECHO_REQUEST: u32 = 128;
const ICMPV6_ECHO_REPLY: u32 = 129;

/** The backend index the section's Maglev table gives the flow key being built (`key`), or LB_EMPTY_SLOT. */
// @ts-ignore: decorator
@inline function maglevSlot(s: tables.SectionRecord, keyLength: u32): u32 {
  return <u32>load<u16>(s.table + (<usize>(murmur3(key, keyLength, LB_FLOW_HASH_SEED) % s.tableSize) << 1));
}

/** Writes the address of `n` bytes at `from` into the key at `at`. */
// @ts-ignore: decorator
@inline function keyAddress(at: usize, from: usize, v6: bool): void {
  if (v6) {
    store<u64>(at, load<u64>(from));
    store<u64>(at, load<u64>(from, 8), 8);
  } else store<u32>(at, load<u32>(from));
}

/**
 * Balances the packet of `len` bytes at `p` in place; returns its result
 * word (the section's index in place of a rule's) and sets `detail`.
 * `vnet` points at its virtio-net header, or is 0.
 */
// @ts-ignore: decorator
@inline export function balancePacket(p: usize, len: u32, vnet: usize): u32 {
  detail = 0;
  if (len < 1) return result(VERDICT_MALFORMED, REASON_TOO_SHORT, -1);
  const version = <u32>load<u8>(p) >> 4;
  let v6 = false;
  let vipIndex: i32;
  let th: u32, end: u32, protocol: u32;
  let fragment = false, nonFirst = false, opaque = false;
  if (version == 4) {
    const fixed = fixed4(p, len);
    if ((fixed & FIXED_MALFORMED) != 0) return result(VERDICT_MALFORMED, fixed & 0xff, -1);
    vipIndex = tables.lookupVip(4, p + ipv4.DST);
    if (vipIndex < 0) return result(VERDICT_PASSED, REASON_NONE, -1);
    th = fixed & 0xff;
    end = fixed >> 8;
    protocol = <u32>load<u8>(p, ipv4.PROTOCOL);
    const flags = be16(p + ipv4.FLAGS_FRAGMENT);
    nonFirst = (flags & ipv4.FRAGMENT_OFFSET_MASK) != 0;
    fragment = (flags & (ipv4.FRAGMENT_OFFSET_MASK | ipv4.MORE_FRAGMENTS)) != 0;
  } else if (version == 6) {
    v6 = true;
    end = fixed6(p, len);
    if ((end & FIXED_MALFORMED) != 0) return result(VERDICT_MALFORMED, end & 0xff, -1);
    vipIndex = tables.lookupVip(6, p + ipv6.DST);
    if (vipIndex < 0) return result(VERDICT_PASSED, REASON_NONE, -1);
    const walk = walk6(p, end);
    if (walk == WALK_BROKEN) return result(VERDICT_MALFORMED, REASON_IPV6_EXTENSION_CHAIN, -1);
    // The VIP is a waypoint of a source route, not where the packet ends: the kernel's business.
    if ((walk & WALK_ROUTING_PENDING) != 0) return result(VERDICT_PASSED, REASON_NONE, -1);
    th = walk & WALK_OFFSET_MASK;
    protocol = (walk >> WALK_NEXT_SHIFT) & 0xff;
    nonFirst = (walk & WALK_NON_FIRST) != 0;
    fragment = nonFirst || (walk & WALK_FIRST_FRAGMENT) != 0;
    opaque = (walk & WALK_OPAQUE) != 0;
  } else {
    return result(VERDICT_MALFORMED, REASON_BAD_VERSION, -1);
  }
  const v = tables.vip(vipIndex);
  const addressBytes: usize = v6 ? 16 : 4;
  const dst = p + (v6 ? ipv6.DST : ipv4.DST);
  const l4len = end - th;
  const t = p + th;

  // What the balancer reads (docs/lb.md#what-the-balancer-reads): the flow's
  // addresses, protocol and ports (where the key takes them from), and the
  // port that picks the section.
  let keySrc = dst - addressBytes;
  let keyDst = dst;
  let keyProtocol = protocol;
  let ports: usize = 0;
  let swapped = false;
  let port: i32 = -1;
  let lookupOnly = false;
  /** A TCP SYN without ACK: a new connection, whatever an entry of an earlier one on the same 5-tuple says. */
  let opening = false;
  /** A first fragment too short for its checksum: dropped with this reason once a section takes it. */
  let fragmentShort: u32 = REASON_NONE;
  if (fragment) {
    if (!nonFirst) {
      const c = checksumOffset(protocol, t, l4len, v6);
      if (c != NO_L4 && (c & L4_TRUNCATED) != 0) fragmentShort = c & 0xffff;
    }
  } else if (isPortProtocol(protocol)) {
    const needs = portNeeds(protocol);
    if (l4len < needs >> 8) return short(v, protocol, needs & 0xff);
    ports = t;
    port = <i32>be16(t + 2);
    opening = protocol == l4.TCP && (<u32>load<u8>(t, l4.TCP_FLAGS) & (l4.TCP_SYN | l4.TCP_ACK)) == l4.TCP_SYN;
  } else if (protocol == (v6 ? l4.ICMPV6 : l4.ICMP) && !opaque) {
    if (l4len < l4.ICMP_MIN_BYTES) return short(v, protocol, v6 ? REASON_ICMPV6_TRUNCATED : REASON_ICMP_TRUNCATED);
    const type = <u32>load<u8>(t);
    if (isIcmpError(v6, type)) {
      // The quoted packet went from the VIP to the client: its flow turned around is the client's.
      if (l4len < l4.ICMP_HEADER_BYTES) return short(v, protocol, REASON_ICMP_EMBEDDED);
      const q = t + l4.ICMP_HEADER_BYTES;
      const qlen = l4len - l4.ICMP_HEADER_BYTES;
      let qth: u32;
      let qNonFirst: bool;
      let qOpaque = false;
      if (v6) {
        if (qlen < ipv6.HEADER || (<u32>load<u8>(q) >> 4) != 6) return short(v, protocol, REASON_ICMP_EMBEDDED);
        // Bounded by what was quoted, not by the quoted packet's own length field: an error quotes only the start.
        const walk = walk6(q, qlen);
        if (walk == WALK_BROKEN) return short(v, protocol, REASON_ICMP_EMBEDDED);
        qth = walk & WALK_OFFSET_MASK;
        keyProtocol = (walk >> WALK_NEXT_SHIFT) & 0xff;
        qNonFirst = (walk & WALK_NON_FIRST) != 0;
        qOpaque = (walk & WALK_OPAQUE) != 0;
        if (load<u64>(q, ipv6.SRC) != load<u64>(dst) || load<u64>(q, ipv6.SRC + 8) != load<u64>(dst, 8)) {
          return short(v, protocol, REASON_ICMP_EMBEDDED);
        }
        keySrc = q + ipv6.DST;
        keyDst = q + ipv6.SRC;
      } else {
        if (qlen < ipv4.MIN_HEADER || (<u32>load<u8>(q) >> 4) != 4) return short(v, protocol, REASON_ICMP_EMBEDDED);
        qth = ipv4.headerLength(q);
        if (qth < ipv4.MIN_HEADER || qth > qlen) return short(v, protocol, REASON_ICMP_EMBEDDED);
        keyProtocol = <u32>load<u8>(q, ipv4.PROTOCOL);
        qNonFirst = (be16(q + ipv4.FLAGS_FRAGMENT) & ipv4.FRAGMENT_OFFSET_MASK) != 0;
        if (load<u32>(q, ipv4.SRC) != load<u32>(dst)) return short(v, protocol, REASON_ICMP_EMBEDDED);
        keySrc = q + ipv4.DST;
        keyDst = q + ipv4.SRC;
      }
      if (!qNonFirst && !qOpaque && isPortProtocol(keyProtocol)) {
        if (qlen - qth < l4.PORT_BYTES) return short(v, protocol, REASON_ICMP_EMBEDDED);
        ports = q + qth;
        swapped = true;
        // The client's destination port, the service's: the quoted source port.
        port = <i32>be16(ports);
      }
      lookupOnly = true;
    } else if (v6 && type >= 128 && type != ICMPV6_ECHO_REQUEST && type != ICMPV6_ECHO_REPLY) {
      // Neighbour discovery, MLD, router messages: the balancer host's and its link's, not a service's.
      return result(VERDICT_PASSED, REASON_NONE, -1);
    }
  }

  const si = sectionFor(v, keyProtocol, port);
  if (si == NO_SECTION) return result(VERDICT_PASSED, REASON_NONE, -1);
  if (si == AMBIGUOUS) return result(VERDICT_DROPPED, REASON_FRAGMENT_AMBIGUOUS, -1);
  if (fragmentShort != REASON_NONE) return result(VERDICT_DROPPED, fragmentShort, si);
  const s = tables.section(si);

  // The flow key (docs/lb.md#flow-hash): addresses, the ports for a 5-tuple, the protocol.
  const fiveTuple = ports != 0 && s.hash == LB_FLOW_5_TUPLE;
  store<u64>(key, 0);
  store<u64>(key, 0, 8);
  store<u64>(key, 0, 16);
  store<u64>(key, 0, 24);
  store<u64>(key, 0, 32);
  keyAddress(key, keySrc, v6);
  keyAddress(key + addressBytes, keyDst, v6);
  let keyLength: u32 = v6 ? 32 : 8;
  if (fiveTuple) {
    if (swapped) {
      store<u16>(key + keyLength, load<u16>(ports, 2));
      store<u16>(key + keyLength, load<u16>(ports), 2);
    } else store<u32>(key + keyLength, load<u32>(ports));
    keyLength += l4.PORT_BYTES;
  }
  store<u8>(key + keyLength, <u8>keyProtocol);
  keyLength += 1;
  const flow = fiveTuple ? LB_FLOW_5_TUPLE : LB_FLOW_3_TUPLE;

  // The checksums the rewrite will fix, and whether a virtio-net header's seed agrees.
  const fixL4 = !nonFirst && !opaque;
  let csum = fixL4 ? checksumOffset(protocol, t, l4len, v6) : NO_L4;
  // Every short transport header was refused above; this is only a guard.
  if (csum != NO_L4 && (csum & L4_TRUNCATED) != 0) return result(VERDICT_DROPPED, csum & 0xffff, si);
  const partial = partialChecksum(vnet, th, csum, protocol == l4.UDP, fixL4);
  if (partial == PARTIAL_INCONSISTENT) return result(VERDICT_DROPPED, REASON_VNET_INCONSISTENT, si);
  if (partial != NOT_PARTIAL) csum = partial;

  // The backend (docs/lb.md#connection-table): the flow's entry while its
  // backend is still in the section and up, else the Maglev table's.
  const bucket = connections.bucketOf(key, keyLength);
  let way = connections.find(bucket, s.id, key, keyLength);
  let chosen: i32 = -1;
  if (way >= 0) {
    if (!lookupOnly) {
      connections.toFront(bucket, way, entryScratch);
      way = 0;
    }
    const known = tables.findBackend(s, connections.backend0(bucket, way), connections.backend1(bucket, way));
    if (known >= 0 && tables.backend(s, <u32>known).up != 0) chosen = known;
  }
  // A connection's first packet goes where the Maglev table says, as on
  // every other balancer: an entry left by an earlier connection on the
  // same 5-tuple (entries do not age out yet) must not send it elsewhere.
  if (opening && chosen >= 0) {
    const slot = maglevSlot(s, keyLength);
    if (slot != LB_EMPTY_SLOT && <i32>slot != chosen) chosen = -1;
  }
  let connection = LB_CONNECTION_HIT;
  if (chosen < 0) {
    const slot = maglevSlot(s, keyLength);
    if (slot == LB_EMPTY_SLOT) {
      if (way >= 0 && !lookupOnly) connections.removeFront(bucket);
      detail = <u32>flow << LB_DETAIL_FLOW_SHIFT;
      return result(VERDICT_DROPPED, REASON_NO_BACKEND, si);
    }
    chosen = <i32>slot;
    const b = tables.backend(s, <u32>chosen);
    if (way >= 0) {
      connection = LB_CONNECTION_MOVED;
      if (!lookupOnly) connections.setFrontBackend(bucket, b.addr0, b.addr1);
    } else {
      connection = LB_CONNECTION_NEW;
      if (!lookupOnly) connections.insertFront(bucket, s.id, key, keyLength, b.addr0, b.addr1);
    }
  }

  const b = tables.backend(s, <u32>chosen);
  b.packets++;
  if (v6) apply6(p, t, csum, partial != NOT_PARTIAL, b.addr0, b.addr1, b.sum, <i32>s.dscp);
  else apply4(p, t, csum, partial != NOT_PARTIAL, <u32>b.addr0, b.sum, <i32>s.dscp);
  detail = <u32>(chosen + 1) | (<u32>connection << LB_DETAIL_CONNECTION_SHIFT) | (<u32>flow << LB_DETAIL_FLOW_SHIFT);
  return result(VERDICT_REWRITTEN, REASON_NONE, si);
}

/**
 * A packet to VIP `v` that cannot be read as far as the balancer needs:
 * dropped when it may be for a section (every ICMP message may be an error
 * about any section's flow), passed when no section takes its protocol.
 */
// @ts-ignore: decorator
@inline function short(v: tables.VipRecord, protocol: u32, reason: u32): u32 {
  if (protocol == l4.ICMP || protocol == l4.ICMPV6 || sectionFor(v, protocol, -1) != NO_SECTION) {
    return result(VERDICT_DROPPED, reason, -1);
  }
  return result(VERDICT_PASSED, REASON_NONE, -1);
}
