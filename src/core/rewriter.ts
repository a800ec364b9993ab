// The typed face of the WASM core: createRewriter({ rules }) and a rewriter
// that works in place on the packets in its core's slots (rewriteSlots: the
// zero-copy batch the TUN data path and the offline mode use), or on the
// caller's own packets, copied in and out (rewrite, rewritePackets).

import { parseAddress } from './address.js';
import { loadCore, type Core, type CoreBuild, type SlotBatch } from './loader.js';
import { ruleIdentity, validateRules, type RuleInput } from './rules.js';
import { decodeResult, readTallies } from './results.js';
import type { Counters, PacketResult, Rule } from './types.js';

export { decodeResult };

export interface RewriterOptions {
  rules: readonly (Rule | RuleInput | string)[];
  /** Bytes per packet slot (at least the largest packet: the TUN's MTU). Default 2048. */
  slotSize?: number;
  /** Packet slots, i.e. the largest batch. Default 256. */
  slotCount?: number;
  /**
   * Each slot starts with a virtio-net header of this many bytes (10 or 12),
   * as a TUN opened with IFF_VNET_HDR delivers packets; lengths include it.
   * Applies to the slots (rewriteSlots); default 0.
   */
  vnetHeaderBytes?: 0 | 10 | 12;
  build?: CoreBuild;
  imports?: WebAssembly.Imports;
  /**
   * A core the caller loaded (loadCore) and keeps, to call its exports
   * itself (the fuzzer's probes, the benchmark); slotSize, slotCount, build
   * and imports are then the core's. One rewriter per core: it owns the
   * rules in it. Without it the rewriter loads a core that no one else sees.
   */
  core?: Core;
}

export class Rewriter {
  readonly #core: Core;
  #rules: Rule[] = [];
  #warnings: string[] = [];

  private constructor(core: Core) {
    this.#core = core;
  }

  static async create(opts: RewriterOptions): Promise<Rewriter> {
    // Validate before paying for instantiation.
    const set = validateRules(opts.rules);
    if (opts.core && (opts.slotSize !== undefined || opts.slotCount !== undefined || opts.build !== undefined || opts.imports !== undefined)) {
      throw new TypeError('a rewriter on a given core takes its slots, build and imports from the core: give core alone');
    }
    const core = opts.core ?? await loadCore({
      slotSize: opts.slotSize ?? 2048, slotCount: opts.slotCount ?? 256, build: opts.build, imports: opts.imports,
    });
    const rw = new Rewriter(core);
    rw.#load(set.rules, set.warnings);
    core.exports.setVnetHeaderBytes(opts.vnetHeaderBytes ?? 0);
    return rw;
  }

  get rules(): readonly Rule[] { return this.#rules; }
  /** Warnings from the last accepted rule set (e.g. a DSCP 0 rule). */
  get warnings(): readonly string[] { return this.#warnings; }
  get memory(): WebAssembly.Memory { return this.#core.memory; }
  get slotSize(): number { return this.#core.batch.slotSize; }
  get slotCount(): number { return this.#core.batch.slotCount; }
  /** The core's packet slots and batch descriptors (and their layout, for TunDevice.attach). */
  get batch(): SlotBatch { return this.#core.batch; }

  /**
   * Rewrites batch entries 0..n-1 in place in their slots: one WASM call.
   * Each entry's result word lands in batch.result(i); a dropped entry's
   * length becomes 0.
   */
  rewriteSlots(n: number): void { this.#core.exports.rewriteSlots(n); }

  /** Rewrites the caller's packet in place, copied through slot 0 and back. */
  rewrite(packet: Uint8Array): PacketResult {
    const { exports, batch } = this.#core;
    if (packet.length > batch.slotSize) return decodeResult(exports.rewriteSlot(0, packet.length));
    const slot = batch.slot(0);
    slot.set(packet);
    const word = exports.rewriteSlot(0, packet.length);
    packet.set(slot.subarray(0, packet.length));
    return decodeResult(word);
  }

  /** Rewrites the caller's packets in place, copied through the slots and back: one WASM call per slotCount packets. */
  rewritePackets(packets: readonly Uint8Array[]): PacketResult[] {
    const { batch } = this.#core;
    return batch.copyThrough(packets, (n) => this.rewriteSlots(n), (i) => decodeResult(batch.result(i)));
  }

  /**
   * Replaces the rule set atomically. A bad set throws (RuleError) and the
   * old one stays live. A rule kept across the swap keeps its counters.
   */
  setRules(rules: readonly (Rule | RuleInput | string)[]): void {
    const set = validateRules(rules);
    this.#load(set.rules, set.warnings);
  }

  #load(rules: Rule[], warnings: string[]): void {
    const { exports, ruleScratch } = this.#core;
    const carried = new Map<string, [bigint, bigint]>();
    this.#rules.forEach((r, i) => carried.set(ruleIdentity(r), [exports.rulePackets(i), exports.ruleBytes(i)]));
    exports.rulesBegin();
    for (const rule of rules) {
      ruleScratch.fill(0);
      if (rule.match) ruleScratch.set(addressBytes(rule.match.address), 0);
      ruleScratch.set(addressBytes(rule.destination), 16);
      const [packets, bytes] = carried.get(ruleIdentity(rule)) ?? [0n, 0n];
      const index = exports.rulesAdd(rule.family, rule.dscp, rule.match ? rule.match.length : 0, rule.setDscp ?? -1, packets, bytes);
      if (index < 0) throw new Error(`core refused rule ${rule.origin}`); // validateRules bounds the count, so this is a bug
    }
    exports.rulesCommit();
    this.#rules = rules;
    this.#warnings = warnings;
  }

  counters(): Counters {
    const { counters, exports } = this.#core;
    const { verdicts, reasons } = readTallies(counters);
    return {
      verdicts,
      reasons,
      rules: this.#rules.map((rule, i) => ({ rule, packets: exports.rulePackets(i), bytes: exports.ruleBytes(i) })),
    };
  }

  resetCounters(): void {
    this.#core.exports.resetCounters();
  }
}

function addressBytes(text: string): Uint8Array {
  const a = parseAddress(text);
  if (typeof a === 'string') throw new Error(`validated address "${text}" no longer parses: ${a}`);
  return a.bytes;
}

/** A rewriter with a validated rule set, on a core of its own (or the one given). */
export function createRewriter(opts: RewriterOptions): Promise<Rewriter> {
  return Rewriter.create(opts);
}
