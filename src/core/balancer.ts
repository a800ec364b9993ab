// The typed face of the WASM core's balancer (docs/lb.md): createBalancer({
// vips }) loads a core with a connection table and two table-set regions,
// installs the [lb] sections (their Maglev tables built here, by
// src/lb/maglev.ts) and balances packets in place in its slots
// (balanceSlots: one call per batch, as Rewriter.rewriteSlots), or the
// caller's packets, copied in and out. A reload or a health change builds a
// whole new table set in the idle region and makes it live with one call,
// so a batch never sees half of one; the connection table stays.
//
// One balancer per core, and one core per TUN queue: a daemon's queue
// worker holds one, as it holds a Rewriter for `l3dsr run`.

import { randomInt } from 'node:crypto';
import { L3dsrError } from '../errors.js';
import { DEFAULT_CONNECTIONS, CONNECTION_WAYS, MAX_CONNECTIONS, MIN_CONNECTIONS } from '../lb/connections.js';
import { buildMaglevTable, canonicalOrder } from '../lb/maglev.js';
import { PORT_PROTOCOLS, type HashMode, type LbVip } from '../lb/types.js';
import {
  LB_CONNECTION_NAMES, LB_DETAIL_CONNECTION_SHIFT, LB_DETAIL_FLOW_SHIFT, LB_FLOW_NAMES,
} from './abi.generated.js';
import { addressText, parseAddress } from './address.js';
import { loadCore, type Core, type CoreBuild, type LbCapacity, type SlotBatch } from './loader.js';
import { decodeResult, readTallies } from './results.js';
import type { Tallies, Verdict } from './types.js';

export type LbConnection = (typeof LB_CONNECTION_NAMES)[number];

/** What the balancer did with one packet (the reference model's LbOutcome, without the bytes). */
export interface BalanceResult {
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
  connection?: LbConnection;
}

export interface BalancerOptions {
  /** The [lb] sections (src/config/lb.ts makes them). */
  vips: readonly LbVip[];
  /** Connection-table entries of this core (one TUN queue): a power of two, 1024-16777216. Default 65536. */
  connections?: number;
  /** The connection table's bucket seed; random unless given (it moves entries, never a backend). */
  tableSeed?: number;
  /**
   * Room for a table set, in each of the two regions (a reload needs the
   * new set to fit); default twice what `vips` needs. Fixed for the
   * core's life: its memory never grows after it is laid out.
   */
  capacity?: LbCapacity;
  /** Bytes per packet slot. Default 2048. */
  slotSize?: number;
  /** Packet slots, i.e. the largest batch. Default 256. */
  slotCount?: number;
  /** Each slot starts with a virtio-net header of this many bytes (10 or 12), as for Rewriter. Default 0. */
  vnetHeaderBytes?: 0 | 10 | 12;
  build?: CoreBuild;
  imports?: WebAssembly.Imports;
}

/** A connection-table entry, as `connections()` lists them. */
export interface ConnectionEntry {
  /** Its bucket and place in it (0: most recently used). */
  bucket: number;
  way: number;
  /** The section's name (one removed since keeps its name here). */
  vip: string;
  /** The flow key (src/lb/flow-hash.ts), hex. */
  key: string;
  backend: string;
}

export interface BalancerCounters extends Tallies {
  /** Connection-table entries pushed out of a full bucket by a new flow. */
  evictions: bigint;
  /** Packets balanced to each backend of the live sections, in configuration order. */
  backends: BackendPackets[];
}

export interface BackendPackets {
  vip: string;
  backend: string;
  /** Since the backend entered its section (kept across reloads and health changes that keep it). */
  packets: bigint;
  /** Its slots in the section's live Maglev table (of `tableSize`): the share of new flows it takes. */
  slots: number;
}

const backendKey = (vip: string, backend: string): string => `${vip} ${backend}`;

interface Built {
  from: string;
  table: Uint16Array;
  /** Slots per backend index (canonical order). */
  slots: number[];
}

function build(weighted: { address: Uint8Array; weight: number }[], tableSize: number, from: string): Built {
  const table = buildMaglevTable(weighted, tableSize);
  const slots = new Array<number>(weighted.length).fill(0);
  for (const b of table) if (b < slots.length) slots[b]!++;
  return { from, table, slots };
}

interface Installed {
  vip: LbVip;
  /** Canonical order: the Maglev table's and the detail word's backend indexes. */
  backends: { text: string; bytes: Uint8Array; weight: number; slots: number }[];
}

const bytesOf = (text: string): Uint8Array => {
  const a = parseAddress(text);
  if (typeof a === 'string') throw new Error(`validated address "${text}" no longer parses: ${a}`);
  return a.bytes;
};

/** What a set of sections needs of a region. */
function needs(vips: readonly LbVip[]): LbCapacity {
  return {
    sections: vips.length,
    backends: vips.reduce((n, v) => n + v.backends.length, 0),
    ranges: vips.reduce((n, v) => n + (v.ports?.length ?? 0), 0),
    slots: vips.reduce((n, v) => n + v.tableSize, 0),
  };
}
const fits = (need: LbCapacity, room: LbCapacity): boolean =>
  need.sections <= room.sections && need.backends <= room.backends && need.ranges <= room.ranges && need.slots <= room.slots;
const describe = (c: LbCapacity): string => `${c.sections} sections, ${c.backends} backends, ${c.ranges} port ranges, ${c.slots} Maglev slots`;

export class Balancer {
  readonly #core: Core;
  readonly #capacity: LbCapacity;
  /** Section name -> the id the connection table knows it by; kept across reloads, never reused. */
  readonly #ids = new Map<string, number>();
  readonly #names = new Map<number, string>();
  /** Section name -> addresses of its backends that are down. */
  readonly #down = new Map<string, Set<string>>();
  /**
   * Section name -> its last Maglev table, what it was built from and each
   * backend's slots in it: a health change or a reload rebuilds only the
   * sections it changed.
   */
  #tables = new Map<string, Built>();
  /** The live set, by section index (the result word's). */
  #installed: Installed[] = [];
  #vips: readonly LbVip[] = [];
  /**
   * Packets of each backend (by backendKey) in table sets no longer live:
   * the core counts in the live set's backend records, which a new set
   * starts at zero.
   */
  #carried = new Map<string, bigint>();

  private constructor(core: Core, capacity: LbCapacity) {
    this.#core = core;
    this.#capacity = capacity;
  }

  static async create(opts: BalancerOptions): Promise<Balancer> {
    const connections = opts.connections ?? DEFAULT_CONNECTIONS;
    if (!Number.isInteger(connections) || connections < MIN_CONNECTIONS || connections > MAX_CONNECTIONS || (connections & (connections - 1)) !== 0) {
      throw new RangeError(`connections must be a power of two ${MIN_CONNECTIONS}-${MAX_CONNECTIONS}, got ${connections}`);
    }
    const need = needs(opts.vips);
    const capacity = opts.capacity ?? { sections: 2 * need.sections, backends: 2 * need.backends, ranges: 2 * need.ranges, slots: 2 * need.slots };
    if (!fits(need, capacity)) throw new L3dsrError('ERR_L3DSR_LB_TABLES', `the [lb] sections need ${describe(need)}; the capacity given holds ${describe(capacity)}`);
    const core = await loadCore({
      slotSize: opts.slotSize ?? 2048, slotCount: opts.slotCount ?? 256, build: opts.build, imports: opts.imports,
      balancer: { connections, seed: opts.tableSeed ?? randomInt(0, 2 ** 32), capacity },
    });
    core.exports.setVnetHeaderBytes(opts.vnetHeaderBytes ?? 0);
    const b = new Balancer(core, capacity);
    b.configure(opts.vips);
    return b;
  }

  get vips(): readonly LbVip[] { return this.#vips; }
  /** The live sections' names, by the index a result word carries (+1). */
  get sections(): readonly string[] { return this.#installed.map((s) => s.vip.name); }
  get memory(): WebAssembly.Memory { return this.#core.memory; }
  /** The core's packet slots and batch descriptors (and their layout, for TunDevice.attach). */
  get batch(): SlotBatch { return this.#core.batch; }
  get capacity(): LbCapacity { return { ...this.#capacity }; }
  /** The coverage build's edge counters (the fuzzer's); null for the release build. */
  get coverage(): Uint32Array | null { return this.#core.coverage; }
  /** Connection-table entries (this core's). */
  get connectionCount(): number { return this.#core.exports.lbConnectionEntries(); }

  /**
   * A new set of sections (a reload): the tables rebuilt and made live at
   * once, health kept for backends still there (or, given `down`, exactly
   * those backends down: section name -> addresses), the connection table
   * kept. A set that does not fit the capacity throws (ERR_L3DSR_LB_TABLES)
   * and the old one stays live.
   */
  configure(vips: readonly LbVip[], down?: ReadonlyMap<string, ReadonlySet<string>>): void {
    const need = needs(vips);
    if (!fits(need, this.#capacity)) {
      throw new L3dsrError('ERR_L3DSR_LB_TABLES', `the new [lb] sections need ${describe(need)}; this balancer's core was laid out for ${describe(this.#capacity)} (restart it to make room)`);
    }
    const next = new Map<string, Set<string>>();
    for (const v of vips) {
      const was = down ? down.get(v.name) : this.#down.get(v.name);
      const still = new Set([...was ?? []].filter((a) => v.backends.some((b) => b.address === a)));
      if (still.size > 0) next.set(v.name, still);
    }
    this.#install(vips, next);
    this.#down.clear();
    for (const [k, s] of next) this.#down.set(k, s);
  }

  /** A health check's verdict: down takes a backend out of its section's table and moves its flows; up brings it back. */
  setHealth(vip: string, backend: string, up: boolean): void {
    const v = this.#vips.find((s) => s.name === vip);
    if (!v || !v.backends.some((b) => b.address === backend)) throw new RangeError(`no backend ${backend} in [lb ${vip}]`);
    const down = new Map([...this.#down].map(([k, s]) => [k, new Set(s)]));
    const set = down.get(vip) ?? new Set<string>();
    if (up) set.delete(backend);
    else set.add(backend);
    down.set(vip, set);
    this.#install(this.#vips, down);
    this.#down.clear();
    for (const [k, s] of down) this.#down.set(k, s);
  }

  /** Balances batch entries 0..n-1 in place in their slots: one WASM call. Results: batch.result(i), batch.detail(i), or result(i). */
  balanceSlots(n: number): void { this.#core.exports.balanceSlots(n); }

  /** Batch entry `i` after balanceSlots, decoded against the live set. */
  result(i: number): BalanceResult {
    return this.decode(this.#core.batch.result(i), this.#core.batch.detail(i));
  }

  /** Balances the caller's packet in place, copied through slot 0 and back. */
  balance(packet: Uint8Array): BalanceResult {
    return this.balancePackets([packet])[0];
  }

  /** Balances the caller's packets in place, copied through the slots and back: one WASM call per slotCount packets. */
  balancePackets(packets: readonly Uint8Array[]): BalanceResult[] {
    return this.#core.batch.copyThrough(packets, (n) => this.balanceSlots(n), (i) => this.result(i));
  }

  /** A result word and its lb detail word, named against the live set. */
  decode(word: number, detail: number): BalanceResult {
    const { verdict, reason, rule: section } = decodeResult(word);
    const out: BalanceResult = { verdict };
    if (reason !== undefined) out.reason = reason;
    if (section === undefined) return out;
    const s = this.#installed[section];
    out.vip = s.vip.name;
    const backend = detail & ((1 << LB_DETAIL_CONNECTION_SHIFT) - 1);
    if (backend !== 0) out.backend = s.backends[backend - 1].text;
    const flow = detail >>> LB_DETAIL_FLOW_SHIFT;
    if (flow !== 0) out.flow = LB_FLOW_NAMES[flow - 1];
    const connection = (detail >>> LB_DETAIL_CONNECTION_SHIFT) & ((1 << (LB_DETAIL_FLOW_SHIFT - LB_DETAIL_CONNECTION_SHIFT)) - 1);
    if (connection !== 0) out.connection = LB_CONNECTION_NAMES[connection - 1];
    return out;
  }

  counters(): BalancerCounters {
    const { counters, exports } = this.#core;
    const { verdicts, reasons } = readTallies(counters);
    const live = this.#livePackets();
    const slots = new Map(this.#installed.flatMap((s) => s.backends.map((b) => [backendKey(s.vip.name, b.text), b.slots] as const)));
    const backends = this.#vips.flatMap((v) => v.backends.map((b) => {
      const key = backendKey(v.name, b.address);
      return { vip: v.name, backend: b.address, packets: (this.#carried.get(key) ?? 0n) + (live.get(key) ?? 0n), slots: slots.get(key) ?? 0 };
    }));
    return { verdicts, reasons, evictions: exports.lbEvictions(), backends };
  }

  /** The live set's per-backend packets, by backendKey. */
  #livePackets(): Map<string, bigint> {
    const out = new Map<string, bigint>();
    this.#installed.forEach((s, section) => s.backends.forEach((b, i) => {
      out.set(backendKey(s.vip.name, b.text), this.#core.exports.lbBackendPackets(section, i));
    }));
    return out;
  }

  /** The connection table's entries, bucket by bucket, most recently used first. */
  connections(): ConnectionEntry[] {
    const { exports, lbEntryScratch } = this.#core;
    const out: ConnectionEntry[] = [];
    const n = exports.lbConnectionEntries();
    for (let i = 0; i < n; i++) {
      const id = exports.lbEntryRead(i);
      if (id === 0) continue;
      const length = exports.lbEntryKeyLength(i);
      // 9 or 13 bytes of key for IPv4, 33 or 37 for IPv6.
      const addressBytes = length > 16 ? 16 : 4;
      const backendAt = lbEntryScratch.length - 16;
      out.push({
        bucket: Math.floor(i / CONNECTION_WAYS), way: i % CONNECTION_WAYS, vip: this.#names.get(id) ?? `#${id}`,
        key: Buffer.from(lbEntryScratch.subarray(0, length)).toString('hex'),
        backend: addressText(lbEntryScratch.slice(backendAt, backendAt + addressBytes)),
      });
    }
    return out;
  }

  #idOf(name: string): number {
    let id = this.#ids.get(name);
    if (id === undefined) {
      id = this.#ids.size + 1;
      this.#ids.set(name, id);
      this.#names.set(id, name);
    }
    return id;
  }

  /** Builds the set in the idle region and makes it live; on any failure the live set stays. */
  #install(vips: readonly LbVip[], down: ReadonlyMap<string, ReadonlySet<string>>): void {
    const { exports, ruleScratch, memory } = this.#core;
    // The sections of one VIP go in one after the other (the core's VIP record lists them so).
    const byVip = new Map<string, LbVip[]>();
    for (const v of vips) byVip.set(v.vip, [...byVip.get(v.vip) ?? [], v]);
    const installed: Installed[] = [];
    const tables = new Map<string, Built>();
    // Read before the new set goes live (nothing is balanced meanwhile: one thread), added once it has.
    const counted = this.#livePackets();
    exports.lbBegin();
    for (const group of byVip.values()) {
      for (const v of group) {
        const backends = canonicalOrder(v.backends.map((b) => ({ text: b.address, address: bytesOf(b.address), drain: b.drain, weight: b.weight })));
        const isDown = (text: string): boolean => down.get(v.name)?.has(text) ?? false;
        ruleScratch.fill(0);
        ruleScratch.set(bytesOf(v.vip), 0);
        const hash = LB_FLOW_NAMES.indexOf(v.hash) + 1;
        const index = exports.lbAddSection(this.#idOf(v.name), v.family, v.dscp, hash, v.tableSize, backends.length, v.ports === null ? -1 : v.ports.length);
        // capacity bounds the set and the VIPs are grouped, so this is a bug.
        if (index !== installed.length) throw new Error(`core refused [lb ${v.name}] (${index})`);
        for (const b of backends) {
          ruleScratch.fill(0);
          ruleScratch.set(b.address, 0);
          if (exports.lbAddBackend(index, isDown(b.text) ? 0 : 1) < 0) throw new Error(`core refused backend ${b.text} of [lb ${v.name}]`);
        }
        for (const r of v.ports ?? []) {
          if (exports.lbAddRange(index, PORT_PROTOCOLS[r.protocol], r.from, r.to) < 0) throw new Error(`core refused a port range of [lb ${v.name}]`);
        }
        const weighted = backends.map((b) => ({ address: b.address, weight: b.drain || isDown(b.text) ? 0 : b.weight }));
        const from = `${v.tableSize} ${backends.map((b, i) => `${b.text}=${weighted[i].weight}`).join(' ')}`;
        let built = this.#tables.get(v.name);
        if (built?.from !== from) built = build(weighted, v.tableSize, from);
        tables.set(v.name, built);
        new Uint16Array(memory.buffer, exports.lbTableBase(index), v.tableSize).set(built.table);
        const slots = built.slots;
        installed.push({ vip: v, backends: backends.map((b, i) => ({ text: b.text, bytes: b.address, weight: b.weight, slots: slots[i]! })) });
      }
    }
    if (exports.lbCommit() !== 1) throw new Error('core refused to commit a complete table set');
    this.#installed = installed;
    this.#vips = vips;
    this.#tables = tables;
    const carried = new Map<string, bigint>();
    // Only backends still configured: a removed one's count would be kept for ever.
    for (const v of vips) {
      for (const b of v.backends) {
        const key = backendKey(v.name, b.address);
        const n = (this.#carried.get(key) ?? 0n) + (counted.get(key) ?? 0n);
        if (n > 0n) carried.set(key, n);
      }
    }
    this.#carried = carried;
  }
}

/** A balancer with its [lb] sections installed, on a core of its own. */
export function createBalancer(opts: BalancerOptions): Promise<Balancer> {
  return Balancer.create(opts);
}
