// Packets for the balancer (docs/lb.md), for holding the core's balancer to
// the reference model (test/core-lb.test.ts) and for the l3dsr rewrite
// --lb-config capture test: mostly to the VIPs of a set of [lb] sections,
// from a small set of clients so that flows repeat (connection-table hits)
// and crowd buckets (evictions), in every shape the balancer reads
// differently — each port protocol (whole and truncated), ICMP and ICMPv6
// errors quoting the VIP's replies (and broken quotes), echo, neighbour
// discovery, fragments (first, later, IPv6 atomic), IPv6 extension headers
// and source routes, other protocols — and now and then a fuzzer mutation
// of one (tools/fuzz/mutators.ts) for the malformed.

import type { LbVip } from '../../src/lb/types.js';
import { PORT_PROTOCOLS } from '../../src/lb/types.js';
import { buildPacket, dccp, echo, icmp, tcp, udp, type PacketSpec } from '../packets/build.js';
import { write16, write32 } from '../packets/bytes.js';
import { PROTO, TCP } from '../packets/layout.js';
import type { Rng } from '../packets/rng.js';
import { mutate } from './mutators.js';

const PORTS = [80, 53, 443, 5000, 5001, 5002, 22, 8080];
const CLIENT_PORTS = [40000, 40001, 40002, 51515, 1024, 65535];

/** An SCTP common header (ports, verification tag, CRC32c left 0: it covers no addresses) and a chunk's worth. */
function sctp(ports: readonly [number, number]): Uint8Array {
  const b = new Uint8Array(28);
  write16(b, 0, ports[0]);
  write16(b, 2, ports[1]);
  write32(b, 4, 0xdeadbeef);
  return b;
}

/** TCP flags of whole TCP packets: PSH|ACK twice as often as SYN and SYN|ACK. */
const TCP_FLAG_MIXES = [0x18, 0x18, 0x02, 0x12] as const;

function portSegment(protocol: number, ports: readonly [number, number], payload: number): Uint8Array {
  switch (protocol) {
    case PROTO.TCP: return tcp(payload, ports);
    case PROTO.UDP: return udp(payload, ports);
    case PROTO.UDPLITE: return udp(payload, ports, true);
    case PROTO.DCCP: return dccp(payload, ports);
    default: return sctp(ports);
  }
}

export class LbTraffic {
  readonly #v4: string[];
  readonly #v6: string[];

  /** `clients`: how many client addresses per family (fewer: more repeated flows). */
  constructor(private readonly rng: Rng, vips: readonly LbVip[], private readonly clients = 24) {
    this.#v4 = [...new Set(vips.filter((v) => v.family === 4).map((v) => v.vip)), '203.0.113.99'];
    this.#v6 = [...new Set(vips.filter((v) => v.family === 6).map((v) => v.vip)), '2001:db8:203::99'];
  }

  /** The next packet: a fresh copy the caller may change. */
  next(): Uint8Array {
    const p = this.#shaped();
    return this.rng.oneIn(8) ? mutate(p, { rng: this.rng, corpus: [], maxLength: 2048, rules: [] }) : p;
  }

  #shaped(): Uint8Array {
    const { rng } = this;
    const v6 = rng.oneIn(2);
    const vip = rng.pick(v6 ? this.#v6 : this.#v4);
    const client = v6 ? `2001:db8::${(rng.below(this.clients) + 1).toString(16)}` : `192.0.2.${rng.below(this.clients) + 1}`;
    const dscp = rng.oneIn(4) ? rng.below(64) : 0;
    const ecn = rng.below(4);
    const base = { src: client, dst: vip, dscp, ecn };
    const portProtocols = Object.values(PORT_PROTOCOLS) as number[];
    const ports: [number, number] = [rng.pick(CLIENT_PORTS), rng.pick(PORTS)];
    const fragmentOf = (spec: PacketSpec, offset: number, more: boolean): PacketSpec => v6
      ? { ...spec, ext: [...spec.ext ?? [], { type: 'fragment', offset, more }], checksum: 'keep' }
      : { ...spec, fragment: { offset, more }, checksum: 'keep' };
    switch (rng.below(12)) {
      case 0: case 1: case 2: case 3: {
        // A whole packet of a port protocol.
        const protocol = rng.pick(portProtocols);
        const segment = portSegment(protocol, ports, rng.below(40));
        // Some connections open (SYN), are answered (SYN|ACK) or go on (PSH|ACK): a SYN takes the table's backend over a stale entry.
        if (protocol === PROTO.TCP) segment[TCP.FLAGS] = rng.pick(TCP_FLAG_MIXES);
        return buildPacket({ ...base, protocol, transport: segment, checksum: rng.oneIn(10) ? 'zero' : 'valid' });
      }
      case 4: {
        // Truncated: the transport header shorter than the balancer reads.
        const protocol = rng.pick(portProtocols);
        return buildPacket({ ...base, protocol, transport: portSegment(protocol, ports, 0).slice(0, rng.below(20)), checksum: 'keep' });
      }
      case 5: {
        // An ICMP error quoting the VIP's reply to the client (or not quite).
        const protocol = rng.pick([...portProtocols, PROTO.ICMP, PROTO.GRE]);
        let quoted = buildPacket({ src: rng.oneIn(10) ? client : vip, dst: client, protocol, transport: portSegment(protocol, [ports[1], ports[0]], 8) });
        if (rng.oneIn(5)) quoted = quoted.slice(0, rng.below(quoted.length));
        const type = v6 ? rng.pick([1, 2, 3, 4]) : rng.pick([3, 11, 12]);
        return buildPacket({ ...base, protocol: v6 ? PROTO.ICMPV6 : PROTO.ICMP, transport: icmp(v6, type, 0, 1400, quoted) });
      }
      case 6: {
        // Echo, other ICMP messages, neighbour discovery, a short message.
        const protocol = v6 ? PROTO.ICMPV6 : PROTO.ICMP;
        if (rng.oneIn(4)) return buildPacket({ ...base, protocol, transport: echo(v6).slice(0, rng.below(4)), checksum: 'keep' });
        const type = rng.oneIn(2) ? (v6 ? 128 : 8) : rng.pick(v6 ? [129, 133, 135, 136, 143, 0, 100] : [0, 5, 13, 40]);
        return buildPacket({ ...base, protocol, transport: icmp(v6, type, 0, 0x42420001, rng.below(16)) });
      }
      case 7: case 8: {
        // A fragment: first (with the transport header), later, or (IPv6) atomic.
        const protocol = rng.pick([...portProtocols, PROTO.ICMP, PROTO.ICMPV6]);
        const segment = protocol === PROTO.ICMP || protocol === PROTO.ICMPV6 ? echo(v6) : portSegment(protocol, ports, 16);
        const which = rng.below(3);
        const transport = which === 0 ? segment.slice(0, rng.oneIn(3) ? rng.below(segment.length) : segment.length) : segment;
        return buildPacket(fragmentOf({ ...base, protocol, transport }, which === 1 ? rng.range(1, 100) : 0, which !== 2 || !v6));
      }
      case 9: {
        // IPv6 extension headers, a source route through the VIP, AH.
        if (!v6) return buildPacket({ ...base, protocol: PROTO.TCP, transport: tcp(4, ports), options: new Uint8Array(rng.pick([4, 8, 40])) });
        const ext = rng.pick([
          [{ type: 'hop-by-hop' as const }],
          [{ type: 'destination-options' as const, length: 1 }, { type: 'hop-by-hop' as const }],
          [{ type: 'routing' as const, segmentsLeft: 1, addresses: ['2001:db8::77'] }],
          [{ type: 'routing' as const, segmentsLeft: 0, addresses: 1 }],
          [{ type: 'ah' as const }],
        ]);
        return buildPacket({ ...base, protocol: PROTO.UDP, transport: udp(8, ports), ext, ...(ext[0].type === 'routing' && ext[0].segmentsLeft > 0 ? { finalDestination: '2001:db8::77' } : {}) });
      }
      default: {
        // A protocol without ports.
        const protocol = rng.pick([PROTO.GRE, PROTO.ESP, PROTO.IGMP, 253]);
        return buildPacket({ ...base, protocol, transport: rng.bytes(rng.below(40)), checksum: 'keep' });
      }
    }
  }
}
