// The offline rewrite: every record of a capture through the WASM core, in
// batches placed straight into the core's packet slots, and out into a
// classic pcap in input order — except the packets the core drops. The link
// layer in front of each IP packet is written back byte for byte.
import { createWriteStream, type WriteStream } from 'node:fs';
import { once } from 'node:events';
import {
  REASON_NAMES, RESULT_REASON_SHIFT, RESULT_RULE_SHIFT, VERDICT_DROPPED, VERDICT_NAMES, VERDICT_PASSED, VERDICT_REWRITTEN,
} from '../core/abi.generated.js';
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
  /** A rewriter created with slotSize >= CAPTURE_SLOT_SIZE (larger packets are reported malformed/slot-overflow). */
  rewriter: Rewriter;
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
  /** Per rule (same order as the rewriter's rules): packets rewritten and their IP bytes. */
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
  ) {
    this.stream = stream;
  }

  static async open(path: string, ruleTexts: readonly string[]): Promise<VerdictLog> {
    const stream = createWriteStream(path);
    await once(stream, 'open');
    return new VerdictLog(stream, ruleTexts);
  }

  notIp(index: number): void {
    this.pending.push(`{"index":${index},"verdict":"passed","l3":false}\n`);
  }

  result(index: number, word: number): void {
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

/** Where each record of a batch went: its slot (>= 0) or NOT_IP. */
const NOT_IP = -1;

export async function rewriteCapture(options: RewriteCaptureOptions): Promise<RewriteCaptureResult> {
  const rw = options.rewriter;
  const reader = await openCapture(options.input);
  const result: RewriteCaptureResult = {
    records: 0,
    written: 0,
    notIp: 0,
    verdicts: { passed: 0, rewritten: 0, malformed: 0, dropped: 0 },
    rules: rw.rules.map((rule) => ({ text: ruleText(rule), packets: 0, bytes: 0 })),
    reasons: {},
  };
  let writer: PcapWriter | undefined;
  let log: VerdictLog | undefined;
  try {
    log = options.verdicts === undefined ? undefined : await VerdictLog.open(options.verdicts, result.rules.map((r) => r.text));
    const batchSize = Math.min(CAPTURE_BATCH, rw.slotCount);
    const slotOf = new Int32Array(batchSize);
    const l3Offset = new Int32Array(batchSize);
    const slotBatch = rw.batch;

    for (;;) {
      let batch: CaptureRecord[] | null;
      try {
        batch = await reader.nextBatch(batchSize);
      } catch (err) {
        if (err instanceof PcapError) {
          result.error = err;
          break;
        }
        throw err;
      }
      if (batch === null) break;
      writer ??= await PcapWriter.create(options.output, classicOptionsFor(batch[0], reader.interfaces));

      // Place every IP packet in a slot; stop the batch at a frame whose link type is unknown.
      let count = batch.length;
      let slots = 0;
      for (let i = 0; i < batch.length; i++) {
        const r = batch[i];
        let ip: boolean;
        let offset: number;
        try {
          ({ ip, offset } = locateL3(r.linkType, r.data));
        } catch (err) {
          if (!(err instanceof PcapError)) throw err;
          result.error = err.at({ offset: r.offset, record: r.index, file: reader.name });
          count = i;
          break;
        }
        if (!ip) {
          slotOf[i] = NOT_IP;
          continue;
        }
        const length = r.data.length - offset;
        slotBatch.setEntry(slots, slots, length);
        if (length <= slotBatch.slotSize) slotBatch.slot(slots).set(r.data.subarray(offset));
        slotOf[i] = slots++;
        l3Offset[i] = offset;
      }
      if (slots > 0) rw.rewriteSlots(slots);

      for (let i = 0; i < count; i++) {
        const r = batch[i];
        const slot = slotOf[i];
        const word = slot === NOT_IP ? VERDICT_PASSED : slotBatch.result(slot);
        const verdict = word & 0xff;
        if (verdict === VERDICT_REWRITTEN) r.data.set(slotBatch.slot(slot).subarray(0, r.data.length - l3Offset[i]), l3Offset[i]);
        if (verdict !== VERDICT_DROPPED) {
          try {
            writer.write(r);
          } catch (err) {
            if (!(err instanceof PcapError)) throw err;
            result.error = err.at({ file: reader.name });
            break;
          }
          result.written++;
        }
        // Counted only once written (or dropped), so the summary matches the output after an error.
        result.records++;
        result.verdicts[VERDICT_NAMES[verdict]]++;
        if (verdict === VERDICT_REWRITTEN) {
          const rule = result.rules[(word >>> RESULT_RULE_SHIFT) - 1];
          rule.packets++;
          rule.bytes += r.data.length - l3Offset[i];
        }
        const reason = (word >>> RESULT_REASON_SHIFT) & 0xff;
        if (reason !== 0) {
          const name = REASON_NAMES[reason];
          (result.reasons[name] ??= { verdict: VERDICT_NAMES[verdict], packets: 0 }).packets++;
        }
        if (slot === NOT_IP) {
          result.notIp++;
          log?.notIp(r.index);
        } else {
          log?.result(r.index, word);
        }
      }
      await log?.flush();
      if (writer.needsDrain) await writer.drain();
      options.onProgress?.({ records: result.records, position: reader.position, size: reader.size });
      if (result.error !== undefined) break;
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
  return result;
}

function emptyOutputOptions(reader: CaptureReader): WriterOptions {
  const first = reader.interfaces[0];
  if (first === undefined) return { linkType: LINKTYPE.ETHERNET, precision: 'us', snapLength: DEFAULT_SNAP_LENGTH };
  return classicOptionsFor(first, reader.interfaces);
}
