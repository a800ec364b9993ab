// Generators of well-formed IPv4/IPv6 packets (with options, fragments,
// extension headers, every transport the semantics name, truncations and
// wrong checksums), shared by the property tests and the kernel comparison.

import fc from 'fast-check';
import { buildPacket, tcp, udp, dccp, echo, type ExtHeader, type PacketSpec } from '../../tools/packets/build.js';
import { PROTO } from '../../tools/packets/layout.js';

/** Rules the generators aim at: DSCP 1 and 17 for both families, and prefix + set-DSCP rules on DSCP 5. */
export const RULES = [
  '1=203.0.113.10', '1=2001:db8:203::10', '17=203.0.113.20', '17=2001:db8:203::20',
  { dscp: 5, destination: '203.0.113.50', match: '198.51.100.0/25', setDscp: 0 },
  { dscp: 5, destination: '2001:db8:203::50', match: '2001:db8:198::/64', setDscp: 46 },
];

const dscp = fc.oneof(fc.constantFrom(1, 17, 5), fc.integer({ min: 0, max: 63 }));
const transport = fc.oneof(
  fc.record({ protocol: fc.constant(PROTO.TCP), transport: fc.nat(60).map((n) => tcp(n)) }),
  fc.record({ protocol: fc.constant(PROTO.UDP), transport: fc.nat(60).map((n) => udp(n)) }),
  fc.record({ protocol: fc.constant(PROTO.UDPLITE), transport: fc.nat(60).map((n) => udp(n, [7, 9], true)) }),
  fc.record({ protocol: fc.constant(PROTO.DCCP), transport: fc.nat(30).map((n) => dccp(n)) }),
  fc.record({ protocol: fc.constantFrom(PROTO.ICMP, PROTO.ICMPV6), transport: fc.nat(30).map((n) => echo(false, n)) }),
  fc.record({ protocol: fc.constantFrom(PROTO.ESP, PROTO.SCTP, PROTO.GRE, PROTO.NONE), transport: fc.uint8Array({ maxLength: 40 }) }),
  // Truncated transport headers.
  fc.record({ protocol: fc.constantFrom(PROTO.TCP, PROTO.UDP, PROTO.UDPLITE, PROTO.DCCP, PROTO.ICMPV6), transport: fc.uint8Array({ maxLength: 19 }) }),
);
const checksum = fc.oneof(fc.constant('valid' as const), fc.constant('zero' as const), fc.integer({ min: 0, max: 0xffff }));
const ext: fc.Arbitrary<ExtHeader> = fc.oneof(
  fc.record({ type: fc.constantFrom('hop-by-hop' as const, 'destination-options' as const), length: fc.nat(3) }),
  fc.record({ type: fc.constant('routing' as const), segmentsLeft: fc.nat(2) }),
  fc.record({ type: fc.constant('fragment' as const), offset: fc.oneof(fc.constant(0), fc.nat(100)), more: fc.boolean() }),
  fc.record({ type: fc.constant('ah' as const), length: fc.nat(6) }),
);

export const v4spec: fc.Arbitrary<PacketSpec> = fc.record({
  src: fc.constantFrom('192.0.2.1', '203.0.113.99'),
  dst: fc.constantFrom('198.51.100.2', '198.51.100.200', '203.0.113.10', '192.0.2.77'),
  dscp, ecn: fc.nat(3), ttl: fc.integer({ min: 1, max: 255 }),
  options: fc.option(fc.uint8Array({ maxLength: 40 }), { nil: undefined }),
  fragment: fc.option(fc.record({ offset: fc.oneof(fc.constant(0), fc.nat(0x1fff)), more: fc.boolean() }), { nil: undefined }),
  headerChecksum: fc.option(fc.integer({ min: 0, max: 0xffff }), { freq: 5, nil: undefined }),
  padding: fc.option(fc.nat(8), { nil: undefined }),
  checksum,
}).chain((ip) => transport.map((t) => ({ ...ip, ...t })));

export const v6spec: fc.Arbitrary<PacketSpec> = fc.record({
  src: fc.constant('2001:db8:192::1'),
  dst: fc.constantFrom('2001:db8:198::2', '2001:db8:199::2', '2001:db8:203::10'),
  dscp, ecn: fc.nat(3), ttl: fc.integer({ min: 1, max: 255 }),
  ext: fc.array(ext, { maxLength: 4 }),
  padding: fc.option(fc.nat(8), { nil: undefined }),
  checksum,
}).chain((ip) => transport.map((t) => ({ ...ip, ...t })));

export const packet = fc.oneof(v4spec, v6spec).map(buildPacket);
