// The offline rewrite: every record of a capture through the WASM core, in
// batches placed straight into the core's packet slots, and out into a
// classic pcap in input order — except the packets the core drops. The link
// layer in front of each IP packet is written back byte for byte. The core
// rewrites as the real server does (a Rewriter) or balances (a Balancer,
// l3dsr rewrite --lb-config).
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import {
  REASON_NAMES, RESULT_REASON_SHIFT, RESULT_RULE_SHIFT, VERDICT_DROPPED, VERDICT_NAMES, VERDICT_PASSED, VERDICT_REWRITTEN,
} from '../core/abi.generated.js';
import type { Balancer } from '../core/balancer.js';
import type { SlotBatch } from '../core/loader.js';
import type { Rewriter } from '../core/rewriter.js';
import { ruleText } from '../core/rules.js';
import type { Verdict } from '../core/types.js';
import { PcapError } from './errors.js';
import { LINKTYPE, locateL3 } from './linklayer.js';
import { openCapture, type CaptureReader } from './reader.js';
import type { CaptureRecord } from './record.js';
import { DEFAULT_SNAP_LENGTH, PcapWriter, classicOptionsFor, type WriterOptions } from './writer.js';

/**
 * Slot size for the offline mode: the largest IP packet (IPv6: 40-byte
 * header + 65535 payload), so any packet a capture can hold fits. Captures
 * are not TUN reads: GRO'd super-packets of tens of KB are common in them.
 */
export const CAPTURE_SLOT_SIZE = 40 + 65535 + 1;
/** Records per core call. */
export const CAPTURE_BATCH = 256;

export interface RewriteProgress {
  records: number;
  /** Bytes of the input consumed, and its size when known. */
  position: number;
  size: number | undefined;
}

export interface RewriteCaptureOptions {
  input: string;
  output: string;
  /**
   * A rewriter or a balancer created with slotSize >= CAPTURE_SLOT_SIZE
   * (larger packets are reported malformed/slot-overflow).
   */
  rewriter: Rewriter | Balancer;
  /** Path for one JSON line per input record. */
  verdicts?: string;
  /** Called after every batch. */
  onProgress?: (progress: RewriteProgress) => void;
}

export interface RewriteCaptureResult {
  /** Records handled (read, and passed through the core unless not IP). */
  records: number;
  /** Records written to the output. */
  written: number;
  /** Records whose frame holds no IP packet (ARP, LLDP…): written unchanged, counted as passed. */
  notIp: number;
  /** Per verdict, over all records (not-IP frames are `passed`). */
  verdicts: Record<Verdict, number>;
  /** Per rule (same order as the rewriter's rules), or per [lb] section (`lb NAME`): packets rewritten and their IP bytes. */
  rules: { text: string; packets: number; bytes: number }[];
  /** Per reason (`tcp-truncated`, `ipv4-header`…), with the verdict it belongs to. */
  reasons: Record<string, { verdict: Verdict; packets: number }>;
  /** The input's problem, if reading stopped early; everything before it was written. */
  error?: PcapError;
}

/** One verdict line per record, written in batches with back-pressure. */
class VerdictLog {
  private readonly stream: WriteStream;
  /** JSON after the index, per result word (rule and reason are few). */
  private readonly tails = new Map<number, string>();
  private pending: string[] = [];

  private constructor(
    stream: WriteStream,
    private readonly ruleTexts: readonly string[],
    private readonly balancer: Balancer | undefined,
  ) {
    this.stream = stream;
  }

  static async open(path: string, ruleTexts: readonly string[], balancer: Balancer | undefined): Promise<VerdictLog> {
    const stream = createWriteStream(path);
    await once(stream, 'open');
    return new VerdictLog(stream, ruleTexts, balancer);
  }

  notIp(index: number): void {
    this.pending.push(`{"index":${index},"verdict":"passed","l3":false}\n`);
  }

  result(index: number, word: number, detail: number): void {
    if (this.balancer) {
      // The backend and connection outcome vary per packet: nothing to cache.
      this.pending.push(`${JSON.stringify({ index, ...this.balancer.decode(word, detail) })}\n`);
      return;
    }
    let tail = this.tails.get(word);
    if (tail === undefined) {
      const reason = (word >>> RESULT_REASON_SHIFT) & 0xff;
      const rule = word >>> RESULT_RULE_SHIFT;
      tail =
        `,"verdict":"${VERDICT_NAMES[word & 0xff]}"` +
        (reason !== 0 ? `,"reason":${JSON.stringify(REASON_NAMES[reason])}` : '') +
        (rule !== 0 ? `,"rule":${JSON.stringify(this.ruleTexts[rule - 1])}` : '') +
        '}\n';
      this.tails.set(word, tail);
    }
    this.pending.push(`{"index":${index}${tail}`);
  }

  async flush(): Promise<void> {
    if (this.pending.length === 0) return;
    const text = this.pending.join('');
    this.pending = [];
    if (!this.stream.write(text)) await once(this.stream, 'drain');
  }

  async close(): Promise<void> {
    await this.flush();
    await new Promise<void>((resolve, reject) => this.stream.end((err?: Error | null) => (err ? reject(err) : resolve())));
  }
}

/** Where each record of a batch went: its batch entry (>= 0, in the slot of the same number) or NOT_IP. */
const NOT_IP = -1;

export async function rewriteCapture(options: RewriteCaptureOptions): Promise<RewriteCaptureResult> {
  const reader = await openCapture(options.input);
  const run = new CaptureRewrite(options.rewriter, reader);
  let writer: PcapWriter | undefined;
  let log: VerdictLog | undefined;
  try {
    const balancer = isBalancer(options.rewriter) ? options.rewriter : undefined;
    log = options.verdicts === undefined ? undefined : await VerdictLog.open(options.verdicts, run.result.rules.map((r) => r.text), balancer);
    for (let records = await run.nextRecords(); records !== null; records = await run.nextRecords()) {
      writer ??= await PcapWriter.create(options.output, classicOptionsFor(records[0], reader.interfaces));
      const count = run.rewrite(records);
      run.writeOut(records, count, writer, log);
      await log?.flush();
      if (writer.needsDrain) await writer.drain();
      options.onProgress?.({ records: run.result.records, position: reader.position, size: reader.size });
      if (run.result.error !== undefined) break;
    }
    // An input with no packets still gets a valid (empty) output.
    writer ??= await PcapWriter.create(options.output, emptyOutputOptions(reader));
  } finally {
    await reader.close();
    // Flush what was written even when the input broke off: the caller reports the error after.
    try {
      await writer?.close();
    } finally {
      await log?.close();
    }
  }
  return run.result;
}

/** The steps of one offline rewrite, batch by batch, and what it counted. */
class CaptureRewrite {
  readonly result: RewriteCaptureResult;
  readonly #batchSize: number;
  /** Per record of the current batch: its batch entry or NOT_IP, and where its IP packet starts. */
  readonly #entryOf: Int32Array;
  readonly #l3Offset: Int32Array;

  readonly #batch: SlotBatch;

  constructor(readonly rw: Rewriter | Balancer, readonly reader: CaptureReader) {
    const rows = isBalancer(rw) ? rw.sections.map((name) => `[lb ${name}]`) : rw.rules.map((rule) => ruleText(rule));
    this.result = {
      records: 0,
      written: 0,
      notIp: 0,
      verdicts: { passed: 0, rewritten: 0, malformed: 0, dropped: 0 },
      rules: rows.map((text) => ({ text, packets: 0, bytes: 0 })),
      reasons: {},
    };
    this.#batch = rw.batch;
    this.#batchSize = Math.min(CAPTURE_BATCH, this.#batch.slotCount);
    this.#entryOf = new Int32Array(this.#batchSize);
    this.#l3Offset = new Int32Array(this.#batchSize);
  }

  /** The next records, or null at the end of the input or at a problem in it (then kept in result.error). */
  async nextRecords(): Promise<CaptureRecord[] | null> {
    try {
      return await this.reader.nextBatch(this.#batchSize);
    } catch (err) {
      if (!(err instanceof PcapError)) throw err;
      this.result.error = err;
      return null;
    }
  }

  /**
   * Puts the IP packet of every record in a slot of the core and rewrites
   * them all in one call. Stops at a frame whose link type is unknown: the
   * records before it are the ones to write out, and how many is returned.
   */
  rewrite(records: readonly CaptureRecord[]): number {
    const batch = this.#batch;
    let entries = 0;
    for (let i = 0; i < records.length; i++) {
      const r = records[i];
      let l3: { ip: boolean; offset: number };
      try {
        l3 = locateL3(r.linkType, r.data);
      } catch (err) {
        if (!(err instanceof PcapError)) throw err;
        this.result.error = err.at({ offset: r.offset, record: r.index, file: this.reader.name });
        this.#rewriteEntries(entries);
        return i;
      }
      if (!l3.ip) {
        this.#entryOf[i] = NOT_IP;
        continue;
      }
      const length = r.data.length - l3.offset;
      batch.setEntry(entries, entries, length);
      if (length <= batch.slotSize) batch.slot(entries).set(r.data.subarray(l3.offset));
      this.#entryOf[i] = entries++;
      this.#l3Offset[i] = l3.offset;
    }
    this.#rewriteEntries(entries);
    return records.length;
  }

  #rewriteEntries(n: number): void {
    if (n === 0) return;
    if (isBalancer(this.rw)) this.rw.balanceSlots(n);
    else this.rw.rewriteSlots(n);
  }

  /**
   * Writes out the first `count` records in input order, a rewritten packet
   * from its slot, except those the core dropped, and counts each. Stops
   * at an output error (kept in result.error).
   */
  writeOut(records: readonly CaptureRecord[], count: number, writer: PcapWriter, log: VerdictLog | undefined): void {
    const batch = this.#batch;
    for (let i = 0; i < count; i++) {
      const r = records[i];
      const entry = this.#entryOf[i];
      const word = entry === NOT_IP ? VERDICT_PASSED : batch.result(entry);
      const verdict = word & 0xff;
      const l3Length = r.data.length - this.#l3Offset[i];
      if (verdict === VERDICT_REWRITTEN) r.data.set(batch.slot(entry).subarray(0, l3Length), this.#l3Offset[i]);
      if (verdict !== VERDICT_DROPPED) {
        try {
          writer.write(r);
        } catch (err) {
          if (!(err instanceof PcapError)) throw err;
          this.result.error = err.at({ file: this.reader.name });
          break;
        }
        this.result.written++;
      }
      // Counted only once written (or dropped), so the summary matches the output after an error.
      this.#count(word, l3Length);
      if (entry === NOT_IP) {
        this.result.notIp++;
        log?.notIp(r.index);
      } else {
        log?.result(r.index, word, batch.detail(entry));
      }
    }
  }

  /** One record's result word in the totals; `l3Length`: its IP packet's bytes. */
  #count(word: number, l3Length: number): void {
    const result = this.result;
    const verdict = word & 0xff;
    result.records++;
    result.verdicts[VERDICT_NAMES[verdict]]++;
    if (verdict === VERDICT_REWRITTEN) {
      const rule = result.rules[(word >>> RESULT_RULE_SHIFT) - 1];
      rule.packets++;
      rule.bytes += l3Length;
    }
    const reason = (word >>> RESULT_REASON_SHIFT) & 0xff;
    if (reason !== 0) {
      const name = REASON_NAMES[reason];
      (result.reasons[name] ??= { verdict: VERDICT_NAMES[verdict], packets: 0 }).packets++;
    }
  }
}

function isBalancer(core: Rewriter | Balancer): core is Balancer {
  return 'balanceSlots' in core;
}

function emptyOutputOptions(reader: CaptureReader): WriterOptions {
  const first = reader.interfaces[0];
  if (first === undefined) return { linkType: LINKTYPE.ETHERNET, precision: 'us', snapLength: DEFAULT_SNAP_LENGTH };
  return classicOptionsFor(first, reader.interfaces);
}
