// The reference model of the load balancer (l3dsr lb): docs/lb.md executed
// plainly. Given the [lb] sections, the backends' health and a packet, it
// says what the balancer does: the verdict and reason, the VIP section, the
// backend, and the bytes that leave, with every checksum recomputed from
// scratch (tools/oracle/oracle.ts's rewrite). It holds one queue's connection
// table. The core's balancer (assembly/lb.ts) is held to it packet for packet
// (test/core-lb.test.ts).

import { parseAddress } from '../../src/core/address.js';
import type { Rule, Verdict } from '../../src/core/types.js';
import { DEFAULT_CONNECTIONS } from '../../src/lb/connections.js';
import { flowHash, flowKey } from '../../src/lb/flow-hash.js';
import { buildMaglevTable, canonicalOrder, EMPTY_SLOT, slotOf } from '../../src/lb/maglev.js';
import { PORT_PROTOCOLS, type HashMode, type LbVip } from '../../src/lb/types.js';
import { ConnectionTableModel } from './connection-table.js';
import { readFlow } from './lb-flow.js';
import { oracleRewrite } from './oracle.js';
import { findTransport, parseFixedHeader } from './packet.js';

export interface LbOutcome {
  verdict: Verdict;
  /** For `malformed` and `dropped`. */
  reason?: string;
  /** The [lb] section that took the packet. */
  vip?: string;
  /** The backend it went to (rewritten). */
  backend?: string;
  /** The key its backend was chosen by. */
  flow?: HashMode;
  /** The connection table: the flow's entry was there and still good, was made, or pointed at a backend that is gone. */
  connection?: 'hit' | 'new' | 'moved';
  /** The packet as it leaves (a copy; the input is not changed). */
  output: Uint8Array;
}

export interface LbModelOptions {
  /** Connection-table entries (one queue): a power of two. */
  connections?: number;
  /** The connection table's bucket seed (src/lb/connections.ts). */
  tableSeed?: number;
}

interface Backend {
  address: Uint8Array;
  text: string;
  weight: number;
  drain: boolean;
}

interface Section {
  vip: LbVip;
  /** Canonical order: what the Maglev table's indexes refer to. */
  backends: Backend[];
  table: Uint16Array;
}

const bytesOf = (text: string): Uint8Array => {
  const a = parseAddress(text);
  if (typeof a === 'string') throw new Error(`lb model: bad address ${text}`);
  return a.bytes;
};
const hex = (b: Uint8Array): string => Buffer.from(b).toString('hex');

export class LbModel {
  readonly connections: ConnectionTableModel;
  private sections = new Map<string, Section>();
  /** VIP address (hex of its bytes) -> the sections that balance it. */
  private byAddress = new Map<string, Section[]>();
  /** Section name -> addresses of its backends that are down. */
  private readonly down = new Map<string, Set<string>>();

  constructor(vips: readonly LbVip[], options: LbModelOptions = {}) {
    this.connections = new ConnectionTableModel(options.connections ?? DEFAULT_CONNECTIONS, options.tableSeed ?? 0);
    this.configure(vips);
  }

  /** A new set of sections (a reload): tables rebuilt, health kept for backends still there, the connection table kept. */
  configure(vips: readonly LbVip[]): void {
    this.sections = new Map(vips.map((vip) => {
      const backends = canonicalOrder(vip.backends.map((b): Backend => ({ address: bytesOf(b.address), text: b.address, weight: b.weight, drain: b.drain })));
      return [vip.name, { vip, backends, table: new Uint16Array(0) }];
    }));
    // Health is known per backend of a section: a backend removed and added again starts up, like a new one.
    for (const [name, down] of this.down) {
      const s = this.sections.get(name);
      for (const address of down) if (!s?.backends.some((b) => b.text === address)) down.delete(address);
    }
    this.byAddress = new Map();
    for (const s of this.sections.values()) {
      const key = hex(bytesOf(s.vip.vip));
      this.byAddress.set(key, [...(this.byAddress.get(key) ?? []), s]);
      this.rebuild(s);
    }
  }

  /** A health check's verdict on a backend: down takes it out of the table and moves its flows. */
  setHealth(vip: string, backend: string, up: boolean): void {
    const s = this.sections.get(vip);
    if (!s || !s.backends.some((b) => b.text === backend)) throw new Error(`lb model: no backend ${backend} in [lb ${vip}]`);
    const down = this.down.get(vip) ?? new Set();
    if (up) down.delete(backend);
    else down.add(backend);
    this.down.set(vip, down);
    this.rebuild(s);
  }

  /** A section's Maglev table and the backends its indexes name. */
  tableOf(vip: string): { backends: string[]; table: Uint16Array } {
    const s = this.sections.get(vip);
    if (!s) throw new Error(`lb model: no [lb ${vip}]`);
    return { backends: s.backends.map((b) => b.text), table: s.table };
  }

  process(packet: Uint8Array): LbOutcome {
    const leave = (verdict: Verdict, more: Partial<LbOutcome> = {}): LbOutcome => ({ verdict, ...more, output: packet.slice() });
    const h = parseFixedHeader(packet);
    if ('malformed' in h) return leave('malformed', { reason: h.malformed });
    const sections = this.byAddress.get(hex(packet.subarray(h.dstAt, h.dstAt + h.addrLen)));
    if (!sections) return leave('passed');
    const t = findTransport(packet, h);
    if ('malformed' in t) return leave('malformed', { reason: t.malformed });
    // The VIP is a waypoint of a source route, not where the packet ends: the kernel's business.
    if (t.routingPending) return leave('passed');

    const src = packet.subarray(h.dstAt - h.addrLen, h.dstAt);
    const dst = packet.subarray(h.dstAt, h.dstAt + h.addrLen);
    const f = readFlow(packet, h, t);
    let pick: Section | 'none' | 'ambiguous';
    let tuple: Parameters<typeof flowKey>[0];
    let lookupOnly = false;
    let opening = false;
    switch (f.type) {
      case 'local':
        return leave('passed');
      case 'short': {
        // ICMP may be an error about any section's flow.
        const icmp = f.protocol === 1 || f.protocol === 58;
        return icmp || sectionFor(sections, f.protocol) !== 'none' ? leave('dropped', { reason: f.reason }) : leave('passed');
      }
      case 'ports':
        pick = sectionFor(sections, f.protocol, f.ports.dst);
        tuple = { src, dst, protocol: f.protocol, ports: f.ports };
        // TCP's flags, byte 13: SYN (0x02) without ACK (0x10) opens a connection.
        opening = f.protocol === 6 && t.fragment === 'none' && (packet[t.offset + 13]! & 0x12) === 0x02;
        break;
      case 'portless':
        pick = sectionFor(sections, f.protocol);
        if (pick !== 'none' && pick !== 'ambiguous' && f.short) return leave('dropped', { reason: f.short, vip: pick.vip.name });
        tuple = { src, dst, protocol: f.protocol };
        break;
      case 'icmp-error':
        // The client's flow: its destination port is the service's.
        pick = sectionFor(sections, f.protocol, f.ports?.dst);
        tuple = { src: f.src, dst: f.dst, protocol: f.protocol, ports: f.ports };
        lookupOnly = true;
        break;
    }
    if (pick === 'none') return leave('passed');
    if (pick === 'ambiguous') return leave('dropped', { reason: 'fragment-ambiguous' });
    const section = pick;
    const mode: HashMode = section.vip.hash === '5-tuple' && tuple.ports ? '5-tuple' : '3-tuple';
    const key = flowKey(mode === '5-tuple' ? tuple : { src: tuple.src, dst: tuple.dst, protocol: tuple.protocol });
    const chosen = this.choose(section, key, lookupOnly, opening);
    if (!chosen) return leave('dropped', { reason: 'no-backend', vip: section.vip.name, flow: mode });

    const rule: Rule = { family: h.family, dscp: h.dscp, destination: chosen.backend, setDscp: section.vip.dscp, origin: section.vip.origin };
    const rewritten = oracleRewrite(packet, [rule]);
    if (rewritten.verdict !== 'rewritten') throw new Error(`lb model: the rewrite said ${rewritten.verdict} ${rewritten.reason ?? ''} after the checks that should have caught it`);
    return { verdict: 'rewritten', vip: section.vip.name, backend: chosen.backend, flow: mode, connection: chosen.connection, output: rewritten.output };
  }

  /**
   * The flow's backend: its connection-table entry while that backend is
   * still in the section and up (drained or not), else the Maglev table's
   * choice, recorded. An ICMP error only looks (and changes nothing). A
   * TCP SYN without ACK (`opening`) takes the Maglev table's backend when it
   * has one, whatever an entry left by an earlier connection says.
   */
  private choose(s: Section, key: Uint8Array, lookupOnly: boolean, opening: boolean): { backend: string; connection: 'hit' | 'new' | 'moved' } | undefined {
    const id = `${s.vip.name}|${hex(key)}`;
    const known = lookupOnly ? this.connections.peek(key, id) : this.connections.get(key, id);
    const down = this.down.get(s.vip.name);
    const index = s.table[slotOf(flowHash(key), s.table.length)];
    const usable = known !== undefined && s.backends.some((b) => b.text === known) && !down?.has(known);
    const tableSays = index === EMPTY_SLOT ? undefined : s.backends[index].text;
    if (usable && !(opening && tableSays !== undefined && tableSays !== known)) return { backend: known, connection: 'hit' };
    if (index === EMPTY_SLOT) {
      if (known !== undefined && !lookupOnly) this.connections.delete(key, id);
      return undefined;
    }
    const backend = s.backends[index].text;
    if (!lookupOnly) this.connections.put(key, id, backend);
    return { backend, connection: known === undefined ? 'new' : 'moved' };
  }

  private rebuild(s: Section): void {
    const down = this.down.get(s.vip.name);
    s.table = buildMaglevTable(s.backends.map((b) => ({ address: b.address, weight: b.drain || down?.has(b.text) ? 0 : b.weight })), s.vip.tableSize);
  }
}

/**
 * The section of a VIP that takes a packet of `protocol`: the one without a
 * ports list if there is one (then it is the only one); else the one whose
 * list holds `port`; without a port (a fragment, a protocol without ports),
 * the one listing the protocol at all, if exactly one does.
 */
function sectionFor(sections: readonly Section[], protocol: number, port?: number): Section | 'none' | 'ambiguous' {
  const all = sections.find((s) => s.vip.ports === null);
  if (all) return all;
  const listing = sections.filter((s) => s.vip.ports!.some((r) => PORT_PROTOCOLS[r.protocol] === protocol && (port === undefined || (r.from <= port && port <= r.to))));
  if (listing.length === 0) return 'none';
  return listing.length > 1 ? 'ambiguous' : listing[0];
}
