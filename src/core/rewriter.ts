// The typed face of the WASM core: createRewriter({ rules }) and a rewriter
// that works on single packets, arrays of packets, or (zero copy) on batches
// that the caller places in its slots.

import {
  VERDICT_NAMES, REASON_NAMES, VERDICT_COUNT, REASON_COUNT,
  RESULT_REASON_SHIFT, RESULT_RULE_SHIFT,
} from './abi.generated.js';
import { parseAddress } from './address.js';
import { loadCore, type Core, type CoreBuild } from './loader.js';
import { ruleIdentity, validateRules, type RuleInput } from './rules.js';
import type { Counters, PacketResult, Rule, Verdict } from './types.js';

export interface RewriterOptions {
  rules: readonly (Rule | RuleInput | string)[];
  /** Bytes per packet slot (at least the largest packet: the TUN's MTU). Default 2048. */
  slotSize?: number;
  /** Packet slots, i.e. the largest batch. Default 256. */
  slotCount?: number;
  /**
   * Each slot starts with a virtio-net header of this many bytes (10 or 12),
   * as a TUN opened with IFF_VNET_HDR delivers packets; lengths include it.
   * Applies to the batch path (runBatch); default 0.
   */
  vnetHeaderBytes?: 0 | 10 | 12;
  build?: CoreBuild;
  imports?: WebAssembly.Imports;
}

/** Turns a core result word into a PacketResult. */
export function decodeResult(word: number): PacketResult {
  const out: PacketResult = { verdict: VERDICT_NAMES[word & 0xff] as Verdict };
  const reason = (word >>> RESULT_REASON_SHIFT) & 0xff;
  if (reason !== 0) out.reason = REASON_NAMES[reason];
  const rule = word >>> RESULT_RULE_SHIFT;
  if (rule !== 0) out.rule = rule - 1;
  return out;
}

export class Rewriter {
  #rules: Rule[] = [];
  #warnings: string[] = [];

  private constructor(readonly core: Core) {}

  static async create(opts: RewriterOptions): Promise<Rewriter> {
    // Validate before paying for instantiation.
    const set = validateRules(opts.rules);
    const core = await loadCore({
      slotSize: opts.slotSize ?? 2048, slotCount: opts.slotCount ?? 256, build: opts.build, imports: opts.imports,
    });
    const rw = new Rewriter(core);
    rw.#load(set.rules, set.warnings);
    if (opts.vnetHeaderBytes) core.exports.setVnetHeaderBytes(opts.vnetHeaderBytes);
    return rw;
  }

  get rules(): readonly Rule[] { return this.#rules; }
  /** Warnings from the last accepted rule set (e.g. a DSCP 0 rule). */
  get warnings(): readonly string[] { return this.#warnings; }
  get memory(): WebAssembly.Memory { return this.core.memory; }
  get slotSize(): number { return this.core.slotSize; }
  get slotCount(): number { return this.core.slotCount; }
  /** Batch descriptors (views into WASM memory): entry i = slot index, length; result word out. */
  get batchSlots(): Uint32Array { return this.core.slotIndexes; }
  get batchLengths(): Uint32Array { return this.core.lengths; }
  get batchResults(): Uint32Array { return this.core.results; }

  /** Byte offset of slot `i` in memory.buffer. */
  slotOffset(i: number): number { return this.core.slotsBase + i * this.core.slotSize; }

  /** A view of slot `i` (slotSize bytes). */
  slot(i: number): Uint8Array { return this.core.slotBytes.subarray(i * this.core.slotSize, (i + 1) * this.core.slotSize); }

  /**
   * Rewrites entries 0..n-1 of the batch descriptors in place: one WASM call.
   * Results land in batchResults; a dropped entry's length becomes 0.
   */
  runBatch(n: number): void { this.core.exports.rewriteBatch(n); }

  /** Rewrites one packet in place (copied through slot 0). */
  rewrite(packet: Uint8Array): PacketResult {
    const { core } = this;
    if (packet.length > core.slotSize) return decodeResult(core.exports.rewriteOne(packet.length));
    core.slotBytes.set(packet, 0);
    const word = core.exports.rewriteOne(packet.length);
    packet.set(core.slotBytes.subarray(0, packet.length));
    return decodeResult(word);
  }

  /** Rewrites many packets in place, one WASM call per slotCount packets. */
  rewriteBatch(packets: readonly Uint8Array[]): PacketResult[] {
    const { core } = this;
    const out: PacketResult[] = new Array(packets.length);
    for (let start = 0; start < packets.length; start += core.slotCount) {
      const n = Math.min(core.slotCount, packets.length - start);
      for (let i = 0; i < n; i++) {
        const p = packets[start + i];
        core.slotIndexes[i] = i;
        core.lengths[i] = p.length;
        if (p.length <= core.slotSize) core.slotBytes.set(p, i * core.slotSize);
      }
      core.exports.rewriteBatch(n);
      for (let i = 0; i < n; i++) {
        const p = packets[start + i];
        if (p.length <= core.slotSize) p.set(core.slotBytes.subarray(i * core.slotSize, i * core.slotSize + p.length));
        out[start + i] = decodeResult(core.results[i]);
      }
    }
    return out;
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
    const { exports, ruleScratch } = this.core;
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
    const { counters, exports } = this.core;
    const verdicts = {} as Record<Verdict, bigint>;
    for (let v = 0; v < VERDICT_COUNT; v++) verdicts[VERDICT_NAMES[v] as Verdict] = counters[v];
    const reasons: Record<string, bigint> = {};
    for (let r = 1; r < REASON_COUNT; r++) reasons[REASON_NAMES[r]] = counters[VERDICT_COUNT + r];
    return {
      verdicts,
      reasons,
      rules: this.#rules.map((rule, i) => ({ rule, packets: exports.rulePackets(i), bytes: exports.ruleBytes(i) })),
    };
  }

  resetCounters(): void {
    this.core.exports.resetCounters();
  }
}

function addressBytes(text: string): Uint8Array {
  const a = parseAddress(text);
  if (typeof a === 'string') throw new Error(`validated address "${text}" no longer parses: ${a}`);
  return a.bytes;
}

/** Loads the core with a validated rule set. */
export function createRewriter(opts: RewriterOptions): Promise<Rewriter> {
  return Rewriter.create(opts);
}
