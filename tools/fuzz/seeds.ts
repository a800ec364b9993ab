// The hand-built seed corpus: one valid packet per case the core tells
// apart (family × transport, fragments, IPv4 options and padding, each IPv6
// extension header, zero UDP checksum, DSCP marks that match a rule and
// ones that do not), a few with a wrong checksum on purpose, and a few
// behind a virtio-net header for the core's vnet mode.
// `npm run fuzz -- --write-seeds test/fuzz/corpus` writes them as files.

import { buildPacket, dccp, echo, filler, tcp, udp, type PacketSpec } from '../packets/build.js';
import { PROTO } from '../packets/layout.js';
import { VNET_F_NEEDS_CSUM, vnetHeader } from '../packets/vnet.js';
import type { FuzzInput } from './harness.js';
import { writeSeed } from './mutators.js';

const V4 = { src: '192.0.2.1', dst: '203.0.113.50', prefix: '198.51.100.20', prefixOnly: '198.51.100.200' };
const V6 = { src: '2001:db8:1::1', dst: '2001:db8:203::50', prefix: '2001:db8:100::20', prefixOnly: '2001:db8:100:80::1' };

const v4 = (spec: Partial<PacketSpec> & Pick<PacketSpec, 'protocol' | 'transport'>): PacketSpec => ({ src: V4.src, dst: V4.dst, dscp: 1, ...spec });
const v6 = (spec: Partial<PacketSpec> & Pick<PacketSpec, 'protocol' | 'transport'>): PacketSpec => ({ src: V6.src, dst: V6.dst, dscp: 1, ...spec });

const SEED_SPECS: Record<string, PacketSpec> = {
  'v4-tcp': v4({ protocol: PROTO.TCP, transport: tcp(16) }),
  'v4-udp': v4({ protocol: PROTO.UDP, transport: udp(12) }),
  'v4-udp-zero-checksum': v4({ protocol: PROTO.UDP, transport: udp(12), checksum: 'zero' }),
  'v4-udplite': v4({ protocol: PROTO.UDPLITE, transport: udp(12, [40000, 53], true) }),
  'v4-dccp': v4({ protocol: PROTO.DCCP, transport: dccp(8) }),
  'v4-icmp': v4({ protocol: PROTO.ICMP, transport: echo(false, 8) }),
  'v4-gre': v4({ protocol: PROTO.GRE, transport: filler(12, 1) }),
  'v4-sctp': v4({ protocol: PROTO.SCTP, transport: filler(28, 2) }),
  'v4-fragment-first-udp': v4({ protocol: PROTO.UDP, transport: udp(40), fragment: { offset: 0, more: true } }),
  'v4-fragment-nonfirst': v4({ protocol: PROTO.UDP, transport: filler(24, 3), fragment: { offset: 185, more: false } }),
  'v4-options-tcp': v4({ protocol: PROTO.TCP, transport: tcp(8), options: Uint8Array.of(0x94, 4, 0, 0) }),
  'v4-options-max-udp': v4({ protocol: PROTO.UDP, transport: udp(4), options: Uint8Array.from({ length: 40 }, (_, i) => (i < 39 ? 1 : 0)) }),
  'v4-padding-tcp': v4({ protocol: PROTO.TCP, transport: tcp(4), padding: 6 }),
  'v4-dscp17-prefix-tcp': v4({ dscp: 17, dst: V4.prefix, protocol: PROTO.TCP, transport: tcp(10) }),
  'v4-dscp17-plain-udp': v4({ dscp: 17, protocol: PROTO.UDP, transport: udp(10) }),
  'v4-dscp9-prefix-udp': v4({ dscp: 9, dst: V4.prefixOnly, protocol: PROTO.UDP, transport: udp(10) }),
  'v4-dscp9-outside-passes': v4({ dscp: 9, dst: V4.prefix, protocol: PROTO.UDP, transport: udp(10) }),
  'v4-dscp5-sets-dscp-tcp': v4({ dscp: 5, protocol: PROTO.TCP, transport: tcp(6) }),
  'v4-dscp63-sets-zero-udp': v4({ dscp: 63, ecn: 2, protocol: PROTO.UDP, transport: udp(6) }),
  'v4-unmarked-passes': v4({ dscp: 0, protocol: PROTO.TCP, transport: tcp(6) }),
  'v4-dscp2-no-rule-passes': v4({ dscp: 2, protocol: PROTO.UDP, transport: udp(6) }),
  'v4-ecn-tcp': v4({ ecn: 3, protocol: PROTO.TCP, transport: tcp(6) }),
  'v4-bad-header-checksum-udp': v4({ protocol: PROTO.UDP, transport: udp(6), headerChecksum: 0x1234 }),
  'v4-bad-tcp-checksum': v4({ protocol: PROTO.TCP, transport: tcp(6), checksum: 0xbad0 }),

  'v6-tcp': v6({ protocol: PROTO.TCP, transport: tcp(16) }),
  'v6-udp': v6({ protocol: PROTO.UDP, transport: udp(12) }),
  'v6-udp-zero-checksum': v6({ protocol: PROTO.UDP, transport: udp(12), checksum: 'zero' }),
  'v6-udplite': v6({ protocol: PROTO.UDPLITE, transport: udp(12, [40000, 53], true) }),
  'v6-dccp': v6({ protocol: PROTO.DCCP, transport: dccp(8) }),
  'v6-icmpv6': v6({ protocol: PROTO.ICMPV6, transport: echo(true, 8) }),
  'v6-hop-by-hop-tcp': v6({ protocol: PROTO.TCP, transport: tcp(8), ext: [{ type: 'hop-by-hop' }] }),
  'v6-routing-sl0-udp': v6({ protocol: PROTO.UDP, transport: udp(8), ext: [{ type: 'routing', segmentsLeft: 0, addresses: 1 }] }),
  'v6-routing-sl2-tcp': v6({ protocol: PROTO.TCP, transport: tcp(8), ext: [{ type: 'routing', segmentsLeft: 2 }] }),
  'v6-fragment-first-udp': v6({ protocol: PROTO.UDP, transport: udp(24), ext: [{ type: 'fragment', offset: 0, more: true }] }),
  'v6-fragment-nonfirst': v6({ protocol: PROTO.UDP, transport: filler(24, 4), ext: [{ type: 'fragment', offset: 185, more: false }] }),
  'v6-destopts-icmpv6': v6({ protocol: PROTO.ICMPV6, transport: echo(true, 4), ext: [{ type: 'destination-options', length: 1 }] }),
  'v6-ah-tcp': v6({ protocol: PROTO.TCP, transport: tcp(8), ext: [{ type: 'ah' }] }),
  'v6-esp': v6({ protocol: PROTO.ESP, transport: filler(24, 5) }),
  'v6-no-next-header': v6({ protocol: PROTO.NONE, transport: new Uint8Array(0) }),
  'v6-chain-tcp': v6({
    protocol: PROTO.TCP, transport: tcp(8),
    ext: [{ type: 'hop-by-hop' }, { type: 'destination-options' }, { type: 'routing', segmentsLeft: 0 }, { type: 'fragment', offset: 0, more: true }, { type: 'destination-options' }],
  }),
  'v6-dscp17-prefix-udp': v6({ dscp: 17, dst: V6.prefix, protocol: PROTO.UDP, transport: udp(10) }),
  'v6-dscp17-plain-tcp': v6({ dscp: 17, protocol: PROTO.TCP, transport: tcp(10) }),
  'v6-dscp9-prefix-udp': v6({ dscp: 9, dst: V6.prefixOnly, protocol: PROTO.UDP, transport: udp(10) }),
  'v6-dscp9-outside-passes': v6({ dscp: 9, dst: V6.prefix, protocol: PROTO.UDP, transport: udp(10) }),
  'v6-dscp5-sets-dscp-tcp': v6({ dscp: 5, protocol: PROTO.TCP, transport: tcp(6) }),
  'v6-dscp63-sets-zero-udp': v6({ dscp: 63, ecn: 1, protocol: PROTO.UDP, transport: udp(6) }),
  'v6-unmarked-passes': v6({ dscp: 0, protocol: PROTO.TCP, transport: tcp(6) }),
  'v6-ecn-udp': v6({ ecn: 3, protocol: PROTO.UDP, transport: udp(6) }),
  'v6-bad-tcp-checksum': v6({ protocol: PROTO.TCP, transport: tcp(6), checksum: 0xbad0 }),
};

/**
 * Seeds for the core's virtio-net header mode: TSO-style packets whose
 * transport checksum field holds the pseudo-header seed (NEEDS_CSUM), with a
 * header that points at it, or not; and a header without NEEDS_CSUM.
 */
const VNET_SEEDS: Record<string, () => FuzzInput> = {
  'vnet-v4-tcp-needs-csum': () => ({
    vnet: vnetHeader({ flags: VNET_F_NEEDS_CSUM, csumStart: 20, csumOffset: 16 }),
    bytes: writeSeed(buildPacket(v4({ protocol: PROTO.TCP, transport: tcp(16) }))),
  }),
  'vnet-v6-hop-by-hop-udp-needs-csum': () => ({
    vnet: vnetHeader({ flags: VNET_F_NEEDS_CSUM, csumStart: 48, csumOffset: 6 }),
    bytes: writeSeed(buildPacket(v6({ protocol: PROTO.UDP, transport: udp(12), ext: [{ type: 'hop-by-hop' }] }))),
  }),
  'vnet-v6-tcp-inconsistent-dropped': () => ({
    vnet: vnetHeader({ flags: VNET_F_NEEDS_CSUM, csumStart: 40, csumOffset: 6 }),
    bytes: writeSeed(buildPacket(v6({ protocol: PROTO.TCP, transport: tcp(16) }))),
  }),
  'vnet-v4-icmp-needs-csum': () => ({
    vnet: vnetHeader({ flags: VNET_F_NEEDS_CSUM, csumStart: 20, csumOffset: 2 }),
    bytes: buildPacket(v4({ protocol: PROTO.ICMP, transport: echo(false, 8) })),
  }),
  'vnet-v4-udp-no-flags': () => ({
    vnet: vnetHeader({ flags: 0, csumStart: 0, csumOffset: 0 }),
    bytes: buildPacket(v4({ protocol: PROTO.UDP, transport: udp(12) })),
  }),
};

export interface NamedInput {
  name: string;
  input: FuzzInput;
}

/** The seed corpus, built fresh: plain packets, then the vnet-mode seeds. */
export function seedInputs(): NamedInput[] {
  return [
    ...Object.entries(SEED_SPECS).map(([name, spec]) => ({ name, input: { bytes: buildPacket(spec) } })),
    ...Object.entries(VNET_SEEDS).map(([name, make]) => ({ name, input: make() })),
  ];
}
