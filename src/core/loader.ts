// Loads the WASM core and is the only TypeScript that knows where things
// sit in its memory: it asks the core for every offset after init(), and
// hands out views and the TUN's batch layout, never an offset to compute
// with.

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { L3dsrError } from '../errors.js';
import type { BatchLayout } from '../tun/device.js';
import { LB_KEY_BYTES, VERDICT_COUNT, REASON_COUNT } from './abi.generated.js';

/** The exports that lay the memory out and say where each region is: called here, and nowhere else. */
interface LayoutExports {
  init(size: number, count: number): number;
  initBalancer(size: number, count: number, entries: number, seed: number, regionBytes: number): number;
  lbRegionBytes(sections: number, backends: number, ranges: number, slots: number): bigint;
  slotsBase(): number;
  slotIndexesBase(): number;
  lengthsBase(): number;
  resultsBase(): number;
  detailsBase(): number;
  countersBase(): number;
  ruleScratchBase(): number;
  lbEntryScratchBase(): number;
}

/** The coverage build's counter region (scripts/coverage.mjs). */
interface CoverageExports {
  __covBase(): number;
  __covEdges(): number;
}

/** The core's exports (assembly/index.ts), but for those that say where a region is. */
export interface CoreExports {
  /** Rewrites batch entries 0..n-1 in place in their slots: one call per batch. */
  rewriteSlots(n: number): void;
  /** Rewrites the packet of `length` bytes in slot `slot` in place (as batch entry 0); its result word. */
  rewriteSlot(slot: number, length: number): number;
  setVnetHeaderBytes(bytes: number): void;
  slotSize(): number;
  slotCount(): number;
  resetCounters(): void;
  rulesBegin(): void;
  rulesAdd(family: number, dscp: number, prefixLength: number, setDscp: number, packets: bigint, bytes: bigint): number;
  rulesCommit(): void;
  ruleCount(): number;
  rulePackets(index: number): bigint;
  ruleBytes(index: number): bigint;
  /** Balances batch entries 0..n-1 in place (a core loaded with `balancer`): results, and an lb detail word per entry. */
  balanceSlots(n: number): void;
  balanceSlot(slot: number, length: number): number;
  lbBegin(): void;
  /** The VIP's address in the scratch buffer (+0); the section's index, or < 0. */
  lbAddSection(id: number, family: number, dscp: number, hash: number, tableSize: number, backendCount: number, rangeCount: number): number;
  /** The backend's address in the scratch buffer (+0); its index, or -1. */
  lbAddBackend(section: number, up: number): number;
  lbAddRange(section: number, protocol: number, from: number, to: number): number;
  /** Where the section's Maglev table (tableSize u16s) is written, in the set being built. */
  lbTableBase(section: number): number;
  /** Makes the set built since lbBegin live: 1, or 0 if a section is incomplete. */
  lbCommit(): number;
  lbSectionCount(): number;
  lbConnectionEntries(): number;
  /** Connection-table entry i's section id (0: empty); its key and backend are copied to the entry scratch. */
  lbEntryRead(i: number): number;
  lbEntryKeyLength(i: number): number;
  lbEvictions(): bigint;
  /** Packets balanced to backend `backend` (canonical index) of live section `section` since its table set went live. */
  lbBackendPackets(section: number, backend: number): bigint;
}

/**
 * The packet slots and the batch descriptors of a core: batch entry i
 * names a slot and a length; the core's batch call writes a result word
 * per entry and sets a dropped entry's length to 0. Everything here is a
 * view of the core's memory, valid for the life of the core (it never
 * grows its memory after init).
 */
export class SlotBatch {
  readonly #slotsBase: number;
  readonly #slotIndexesOffset: number;
  readonly #lengthsOffset: number;
  readonly #slotBytes: Uint8Array;
  readonly #slotIndexes: Uint32Array;
  readonly #lengths: Uint32Array;
  readonly #results: Uint32Array;
  readonly #details: Uint32Array;
  /** slot(i) views, made on first use. */
  readonly #slots: (Uint8Array | undefined)[];

  /** @internal loadCore() makes it, from the offsets the core reports. */
  constructor(readonly memory: WebAssembly.Memory, readonly slotSize: number, readonly slotCount: number, exports: LayoutExports) {
    const buf = memory.buffer;
    this.#slotsBase = exports.slotsBase();
    this.#slotIndexesOffset = exports.slotIndexesBase();
    this.#lengthsOffset = exports.lengthsBase();
    this.#slotBytes = new Uint8Array(buf, this.#slotsBase, slotCount * slotSize);
    this.#slotIndexes = new Uint32Array(buf, this.#slotIndexesOffset, slotCount);
    this.#lengths = new Uint32Array(buf, this.#lengthsOffset, slotCount);
    this.#results = new Uint32Array(buf, exports.resultsBase(), slotCount);
    this.#details = new Uint32Array(buf, exports.detailsBase(), slotCount);
    this.#slots = new Array<Uint8Array | undefined>(slotCount);
  }

  /** Slot `i`, all slotSize bytes of it. */
  slot(i: number): Uint8Array {
    let view = this.#slots[i];
    if (view === undefined) {
      if (!Number.isInteger(i) || i < 0 || i >= this.slotCount) throw new RangeError(`slot must be 0..${this.slotCount - 1}, got ${i}`);
      view = this.#slots[i] = this.#slotBytes.subarray(i * this.slotSize, (i + 1) * this.slotSize);
    }
    return view;
  }

  /**
   * Sets batch entry `i`: the packet in slot `slot`, `length` bytes long.
   * Written as given: the core itself refuses an entry whose slot or
   * length does not fit (malformed, slot-overflow).
   */
  setEntry(i: number, slot: number, length: number): void {
    this.#slotIndexes[i] = slot;
    this.#lengths[i] = length;
  }

  /** The slot of batch entry `i`. */
  entrySlot(i: number): number {
    return this.#slotIndexes[i];
  }

  /** The length of batch entry `i`: 0 once the core dropped it. */
  entryLength(i: number): number {
    return this.#lengths[i];
  }

  /** The result word of batch entry `i` after a batch call (decodeResult reads it). */
  result(i: number): number {
    return this.#results[i];
  }

  /** The balancer's lb detail word of batch entry `i` after a balancing batch call (decodeBalance reads it). */
  detail(i: number): number {
    return this.#details[i];
  }

  /**
   * Runs the caller's packets through the slots, `slotCount` at a time:
   * each is copied in, `process(n)` handles the batch in place, each is
   * copied back and `result(i)` read. A packet longer than a slot is not
   * copied (the core sees its length and refuses it).
   */
  copyThrough<R>(packets: readonly Uint8Array[], process: (n: number) => void, result: (i: number) => R): R[] {
    const out: R[] = new Array(packets.length);
    for (let start = 0; start < packets.length; start += this.slotCount) {
      const n = Math.min(this.slotCount, packets.length - start);
      for (let i = 0; i < n; i++) {
        const p = packets[start + i];
        this.setEntry(i, i, p.length);
        if (p.length <= this.slotSize) this.slot(i).set(p);
      }
      process(n);
      for (let i = 0; i < n; i++) {
        const p = packets[start + i];
        if (p.length <= this.slotSize) p.set(this.slot(i).subarray(0, p.length));
        out[start + i] = result(i);
      }
    }
    return out;
  }

  /**
   * Where the slots and the descriptors are, as TunDevice.attach takes it: the
   * addon reads packets into the slots and fills entries 0..n-1 of the
   * descriptors (at most `batchMax`) before each batch call.
   */
  layout(batchMax: number): BatchLayout {
    return {
      slotBase: this.#slotsBase, slotSize: this.slotSize, slotCount: this.slotCount,
      slotsOffset: this.#slotIndexesOffset, lengthsOffset: this.#lengthsOffset, batchMax,
    };
  }
}

/** An instantiated core with its memory laid out. */
export interface Core {
  readonly exports: CoreExports;
  readonly memory: WebAssembly.Memory;
  readonly batch: SlotBatch;
  /** u64 per verdict, then per reason. */
  readonly counters: BigUint64Array;
  /** Two 16-byte address buffers read by rulesAdd: match at +0, destination at +16; lbAddSection and lbAddBackend read +0. */
  readonly ruleScratch: Uint8Array;
  /** Where lbEntryRead copies an entry: its key (LB_KEY_BYTES), then its backend's 16 bytes. */
  readonly lbEntryScratch: Uint8Array;
  /** The coverage build's edge counters (u32 each); null for the release build. */
  readonly coverage: Uint32Array | null;
}

export type CoreBuild = 'release' | 'coverage';

const modules = new Map<string, Promise<WebAssembly.Module>>();

/** Where a build of the core lives (dist/wasm/, next to this file's dist/src/core/). */
export function corePath(build: CoreBuild = 'release'): string {
  const file = build === 'release' ? 'core.wasm' : 'core.cov.wasm';
  return fileURLToPath(new URL(`../../wasm/${file}`, import.meta.url));
}

function compile(path: string): Promise<WebAssembly.Module> {
  let m = modules.get(path);
  if (m === undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      throw new L3dsrError('ERR_L3DSR_NO_CORE', `WASM core not found at ${path}: run "npm run build"`, { cause: err });
    }
    m = WebAssembly.compile(bytes);
    modules.set(path, m);
  }
  return m;
}

/** Room for the balancer's table sets: each of the two regions holds this much. */
export interface LbCapacity {
  sections: number;
  backends: number;
  ranges: number;
  /** Maglev slots, all sections together. */
  slots: number;
}

export interface LoadOptions {
  slotSize: number;
  slotCount: number;
  /** Lays out a balancer's memory too: its connection table (entries, bucket seed) and two table-set regions. */
  balancer?: { connections: number; seed: number; capacity: LbCapacity };
  build?: CoreBuild;
  /** Extra imports (the coverage build reports through one). */
  imports?: WebAssembly.Imports;
}

function coverageCounters(exports: Partial<CoverageExports>, buf: ArrayBuffer): Uint32Array {
  if (typeof exports.__covBase !== 'function' || typeof exports.__covEdges !== 'function') {
    throw new L3dsrError('ERR_L3DSR_COVERAGE_BUILD', 'the coverage core has no __covBase/__covEdges exports: rebuild it with scripts/coverage.mjs');
  }
  return new Uint32Array(buf, exports.__covBase(), exports.__covEdges());
}

/** Compiles (once per process) and instantiates a core with its own memory. */
export async function loadCore(opts: LoadOptions): Promise<Core> {
  const { slotSize, slotCount } = opts;
  if (!Number.isInteger(slotSize) || slotSize < 64 || slotSize > 1 << 20) throw new RangeError(`slotSize must be 64..1048576, got ${slotSize}`);
  if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > 65536) throw new RangeError(`slotCount must be 1..65536, got ${slotCount}`);
  const module = await compile(corePath(opts.build));
  const memory = new WebAssembly.Memory({ initial: 1 });
  const instance = await WebAssembly.instantiate(module, { ...opts.imports, env: { memory, ...opts.imports?.env } });
  const exports = instance.exports as unknown as CoreExports & LayoutExports & Partial<CoverageExports>;
  if (opts.balancer) {
    const { connections, seed, capacity: c } = opts.balancer;
    const regionBytes = Number(exports.lbRegionBytes(c.sections, c.backends, c.ranges, c.slots));
    if (regionBytes > 0x7fffffff || exports.initBalancer(slotSize, slotCount, connections, seed >>> 0, regionBytes) !== 1) {
      throw new RangeError(`cannot lay out WASM memory for ${slotCount} slots of ${slotSize} bytes, ${connections} connections and two table sets of ${regionBytes} bytes`);
    }
  } else if (exports.init(slotSize, slotCount) !== 1) throw new RangeError(`cannot grow WASM memory for ${slotCount} slots of ${slotSize} bytes`);
  // The core never grows its memory after init, so these views stay valid.
  const buf = memory.buffer;
  return {
    exports,
    memory,
    batch: new SlotBatch(memory, slotSize, slotCount, exports),
    counters: new BigUint64Array(buf, exports.countersBase(), VERDICT_COUNT + REASON_COUNT),
    ruleScratch: new Uint8Array(buf, exports.ruleScratchBase(), 32),
    lbEntryScratch: new Uint8Array(buf, exports.lbEntryScratchBase(), LB_KEY_BYTES + 16),
    coverage: opts.build === 'coverage' ? coverageCounters(exports, buf) : null,
  };
}
