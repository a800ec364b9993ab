// Runs fuzz inputs through the release build the daemon uses and the
// coverage build at once, on the zero-copy batch path: every input goes into
// its own slot, one WASM call per batch and core. Input slots alternate with
// guard slots, and every byte of a slot past its input is guard too, so a
// write outside a packet is caught and blamed on the right input.
//
// A second pair of cores runs in the virtio-net header mode
// (vnetHeaderBytes), and inputs that carry a header go there.

import { Buffer } from 'node:buffer';
import { loadCore, type Core } from '../../src/core/loader.js';
import type { RuleInput } from '../../src/core/rules.js';
import { createRewriter, type Rewriter } from '../../src/core/rewriter.js';
import type { Rule } from '../../src/core/types.js';
import { L3dsrError } from '../../src/errors.js';
import { VNET_HEADER_BYTES } from './vnet.js';

/**
 * A batch descriptor that lies, as a buggy shell could write one: the core
 * must call the entry malformed (slot-overflow) and not touch any slot.
 */
export type DescriptorLie = 'length-over-slot' | 'slot-out-of-range';

export interface FuzzInput {
  /** The L3 packet. */
  bytes: Uint8Array;
  /** A virtio-net header before it (VNET_HEADER_BYTES, or fewer with an empty packet): the input runs in vnet mode. */
  vnet?: Uint8Array;
  descriptor?: DescriptorLie;
}

/** What one core did with one input. */
export interface Observed {
  /** The core's result word. */
  word: number;
  /** The batch length entry after the call (0 for dropped). */
  length: number;
  /** The slot's bytes after the call, as many as the input put there (header included). */
  output: Uint8Array;
  /** Offset in the slot of the first changed byte past the input, or -1. */
  tailChange: number;
}

export interface CoreRun {
  observed: Observed[];
  /** The core trapped: nothing in `observed` is meaningful. */
  trap?: Error;
  /**
   * False when a guard slot between input slots changed. Either neighbour
   * may have written it, so the caller replays the inputs one by one.
   */
  guardsIntact: boolean;
}

export interface HarnessOptions {
  rules: readonly (RuleInput | Rule | string)[];
  /** Inputs per batch (each core gets twice as many slots plus one, for the guards). */
  batchSize: number;
  slotSize: number;
}

/** The same mode in both builds: each rewriter on a core of the harness's own, whose exports the probes call. */
export interface CorePair {
  release: Rewriter;
  coverage: Rewriter;
  cores: { release: Core; coverage: Core };
  /** The coverage build's counter region. */
  counters: Uint32Array;
}

const OUT_OF_RANGE_EXTRA = 7;

export function slotContent(input: FuzzInput): Uint8Array {
  if (!input.vnet) return input.bytes;
  const b = new Uint8Array(input.vnet.length + input.bytes.length);
  b.set(input.vnet);
  b.set(input.bytes, input.vnet.length);
  return b;
}

export class Harness {
  #guard = 0xa5;
  #guardSlot: Uint8Array;
  #edges: Uint32Array;

  private constructor(readonly plain: CorePair, readonly vnet: CorePair, readonly batchSize: number) {
    this.#guardSlot = new Uint8Array(plain.release.slotSize);
    this.#edges = new Uint32Array(plain.counters.length);
  }

  static async create(opts: HarnessOptions): Promise<Harness> {
    const slots = { slotSize: opts.slotSize, slotCount: 2 * opts.batchSize + 1 };
    const pair = async (vnet: boolean): Promise<CorePair> => {
      const cores = { release: await loadCore({ ...slots, build: 'release' }), coverage: await loadCore({ ...slots, build: 'coverage' }) };
      const on = (core: Core) => createRewriter({ rules: opts.rules, core, vnetHeaderBytes: vnet ? VNET_HEADER_BYTES : 0 });
      return { release: await on(cores.release), coverage: await on(cores.coverage), cores, counters: cores.coverage.coverage! };
    };
    return new Harness(await pair(false), await pair(true), opts.batchSize);
  }

  /** The plain-mode cores, which the probes use. */
  get release(): Rewriter { return this.plain.release; }
  get coverage(): Rewriter { return this.plain.coverage; }
  get pairs(): CorePair[] { return [this.plain, this.vnet]; }
  get rules(): readonly Rule[] { return this.plain.release.rules; }
  get slotSize(): number { return this.plain.release.slotSize; }
  /** Header size of the vnet mode. */
  get vnetHeaderBytes(): number { return VNET_HEADER_BYTES; }

  /** Edge hits since the last run() began (both modes added up), in a buffer reused by the next call. */
  edges(): Uint32Array {
    const e = this.#edges;
    e.set(this.plain.counters);
    if (this.vnet) {
      const v = this.vnet.counters;
      for (let i = 0; i < e.length; i++) e[i] += v[i];
    }
    return e;
  }

  /**
   * Runs up to batchSize inputs through both builds. The coverage counters
   * are cleared first, so afterwards edges() holds this batch's hits.
   */
  run(inputs: readonly FuzzInput[]): { release: CoreRun; coverage: CoreRun } {
    if (inputs.length > this.batchSize) throw new RangeError(`at most ${this.batchSize} inputs per batch, got ${inputs.length}`);
    for (const i of inputs) {
      const size = i.bytes.length + (i.vnet?.length ?? 0);
      if (size > this.slotSize) throw new RangeError(`a fuzz input of ${size} bytes does not fit a ${this.slotSize}-byte slot`);
      if (i.vnet && !this.vnet) throw new RangeError('a virtio-net header input, but this core has no vnet mode');
    }
    // A new guard value per batch: a stray write of the guard's own value cannot hide twice.
    this.#guard = (this.#guard + 0x3b) & 0xff || 0x5a;
    this.#guardSlot.fill(this.#guard);
    for (const p of this.pairs) p.counters.fill(0);
    const plainAt: number[] = [];
    const vnetAt: number[] = [];
    inputs.forEach((input, i) => (input.vnet ? vnetAt : plainAt).push(i));
    const out = { release: this.#merge(inputs.length), coverage: this.#merge(inputs.length) };
    for (const [pair, at] of [[this.plain, plainAt], [this.vnet, vnetAt]] as const) {
      if (!pair || at.length === 0) continue;
      const subset = at.map((i) => inputs[i]);
      for (const build of ['release', 'coverage'] as const) {
        const run = this.#runOn(pair[build], subset);
        const into = out[build];
        into.trap ??= run.trap;
        into.guardsIntact &&= run.guardsIntact;
        run.observed.forEach((o, k) => { into.observed[at[k]] = o; });
      }
    }
    return out;
  }

  #merge(n: number): CoreRun {
    return { observed: new Array<Observed>(n), guardsIntact: true };
  }

  #runOn(rw: Rewriter, inputs: readonly FuzzInput[]): CoreRun {
    const { batch } = rw;
    const { slotSize } = batch;
    const n = inputs.length;
    const guard = this.#guard;
    for (let slot = 0; slot < 2 * n + 1; slot++) batch.slot(slot).fill(guard);
    const contents = inputs.map(slotContent);
    contents.forEach((content, i) => {
      const slot = 2 * i + 1;
      const lie = inputs[i].descriptor;
      batch.slot(slot).set(content);
      batch.setEntry(i,
        lie === 'slot-out-of-range' ? batch.slotCount + OUT_OF_RANGE_EXTRA : slot,
        lie === 'length-over-slot' ? slotSize + 1 + (content.length & 0xff) : content.length);
    });
    try {
      rw.rewriteSlots(n);
    } catch (err) {
      return { observed: [], trap: err as Error, guardsIntact: true };
    }
    const observed: Observed[] = new Array(n);
    let guardsIntact = true;
    for (let i = 0; i < n; i++) {
      const len = contents[i].length;
      const slot = batch.slot(2 * i + 1);
      observed[i] = {
        word: batch.result(i),
        length: batch.entryLength(i),
        output: slot.slice(0, len),
        tailChange: this.#firstChange(slot.subarray(len), len),
      };
      guardsIntact &&= this.#firstChange(batch.slot(2 * i), 0) < 0;
    }
    guardsIntact &&= this.#firstChange(batch.slot(2 * n), 0) < 0;
    return { observed, guardsIntact };
  }

  /** The first byte of `region` that is not the guard, as `base` + its index, or -1. */
  #firstChange(region: Uint8Array, base: number): number {
    if (Buffer.compare(region, this.#guardSlot.subarray(0, region.length)) === 0) return -1;
    const guard = this.#guard;
    return base + region.findIndex((b) => b !== guard);
  }

  /** Runs one input alone on its coverage core and returns a copy of what it hit. */
  edgesOf(input: FuzzInput): Uint32Array {
    const pair = input.vnet ? this.vnet : this.plain;
    for (const p of this.pairs) p.counters.fill(0);
    this.#runOn(pair.coverage, [input]);
    return this.edges().slice();
  }
}
