// Numbered UDP datagrams through the lab, and the account of each one: the
// compiled labtool sends datagram n to address n % count at a fixed rate and
// logs when it sent it; a sink on those addresses logs every datagram it
// gets and whether it arrived whole, on the right address. account() then
// says, per datagram, delivered, duplicated, damaged or lost, and whether
// each loss falls inside a window when the path was known to be down.
//
// Times are CLOCK_MONOTONIC nanoseconds, the clock of process.hrtime too:
// the sender, the sink and this process read the same clock in every
// network namespace.
import type { ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Lab, LabRole } from '../../tools/lab/index.js';
import { labtool } from './daemon-traffic.js';

/** Bytes per record of labtool's seqsink log: u32 seq, u16 address index, u16 flags, u64 arrival ns. */
const RECEIVED_RECORD = 16;
/** Bytes per record of labtool's seqsend log: u64 send ns, 0 when sendto failed. */
const SENT_RECORD = 8;

export interface SeqSendResult {
  sent: number;
  errors: number;
  seconds: number;
}

export interface SeqSinkResult {
  received: number;
  /** Datagrams with a wrong length, magic, address or payload. */
  damaged: number;
}

export interface SeqProcess<T> {
  child: ChildProcess;
  /** Tells the program to stop (a line on its stdin) and resolves with its summary once it has exited. */
  stop(): Promise<T>;
}

/** Starts `labtool ARGS` in a namespace, waits for `ready`, and gives a way to stop it for its one-line JSON summary. */
async function startSeqProcess<T>(lab: Lab, role: LabRole, args: string[], what: string): Promise<SeqProcess<T>> {
  const child = lab.spawn(role, labtool(), args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== 'ready') throw new Error(`${what} did not start: ${stderr.trim() || JSON.stringify(first.value)}`);
  const closed = once(child, 'close');
  return {
    child,
    async stop() {
      child.stdin!.end('stop\n');
      const summary = await lines.next();
      await closed;
      if (summary.done) throw new Error(`${what} exited without a summary: ${stderr.trim()}`);
      return JSON.parse(summary.value as string) as T;
    },
  };
}

export interface SeqSenderOptions {
  addresses: readonly string[];
  port: number;
  /** Datagrams per second, over all addresses. */
  rate: number;
  /** Where the send log goes. */
  file: string;
  role?: LabRole;
}

/** Starts sending from cli (by default); datagram n goes to addresses[n % length]. */
export function startSeqSender(lab: Lab, o: SeqSenderOptions): Promise<SeqProcess<SeqSendResult>> {
  return startSeqProcess(lab, o.role ?? 'cli', ['seqsend', String(o.port), String(o.rate), o.file, ...o.addresses], 'the numbered-datagram sender');
}

export interface SeqSinkOptions {
  /** The same addresses, in the same order, as the sender's. */
  addresses: readonly string[];
  port: number;
  file: string;
  role?: LabRole;
}

/** Starts the recording sink in srv (by default). */
export function startSeqSink(lab: Lab, o: SeqSinkOptions): Promise<SeqProcess<SeqSinkResult>> {
  return startSeqProcess(lab, o.role ?? 'srv', ['seqsink', String(o.port), o.file, ...o.addresses], 'the numbered-datagram sink');
}

/** Send times from the sender's log, in ns after `origin`; NaN where the send failed. */
export function readSendTimes(file: string, origin: bigint): Float64Array {
  const bytes = readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const times = new Float64Array(Math.floor(bytes.byteLength / SENT_RECORD));
  for (let i = 0; i < times.length; i++) {
    const t = view.getBigUint64(i * SENT_RECORD, true);
    times[i] = t === 0n ? NaN : Number(t - origin);
  }
  return times;
}

export interface Received {
  seq: number;
  /** Index of the address (the sink's socket) it arrived on. */
  address: number;
  /** labtool's SEQ_* bits: 1 length, 2 magic, 4 wrong address, 8 payload. */
  flags: number;
  /** Arrival, ns after `origin`. */
  at: number;
}

/** The sink's log. */
export function readReceived(file: string, origin: bigint): Received[] {
  const bytes = readFileSync(file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Received[] = [];
  for (let off = 0; off + RECEIVED_RECORD <= bytes.byteLength; off += RECEIVED_RECORD) {
    out.push({
      seq: view.getUint32(off, true),
      address: view.getUint16(off + 4, true),
      flags: view.getUint16(off + 6, true),
      at: Number(view.getBigUint64(off + 8, true) - origin),
    });
  }
  return out;
}

/** A time when the path was known to be down, ns after the same origin. */
export interface Window {
  start: number;
  end: number;
}

/** A run of consecutive lost datagrams outside every window. */
export interface LossRun {
  first: number;
  last: number;
  /** Send time of the first, ns after the origin. */
  sentAt: number;
}

export interface Accounting {
  /** Datagrams sent (sendto succeeded). */
  sent: number;
  sendErrors: number;
  /** Datagrams that arrived at least once, whole. */
  delivered: number;
  /** Extra copies of delivered datagrams. */
  duplicates: number;
  /** Datagrams that arrived damaged (or not ours at all). */
  damaged: number;
  lost: number;
  /** Lost inside a window, or in flight when it began. */
  lostInWindows: number;
  /** Of those, the ones in flight: sent before the window, in the unbroken run of losses that goes on into it. */
  lostInFlight: number;
  /** How long before its window the earliest datagram counted in flight was sent, ns (0 if none). */
  inFlightMax: number;
  /** Lost and sent outside every window: each run of them. */
  lostOutside: LossRun[];
  /** Per window: datagrams lost in it, and the time from the first to the last of them being sent (0 if none). */
  windows: { lost: number; lossSpan: number }[];
  /** Delivery latency (arrival - send), ns: median, 99th percentile, maximum. */
  latency: { p50: number; p99: number; max: number };
}

/**
 * Accounts for every datagram. A loss counts in a window when it was sent
 * inside it, or when it was in flight as the window began: sent at most
 * `maxInFlight` before the start, and followed only by lost datagrams up to
 * the window's own losses. The path has one first-in-first-out queue (the
 * TUN's, then the daemon's batch), so what a daemon that dies loses is an
 * unbroken run of the last datagrams it was given; a loss with a delivered
 * datagram after it, before the window, was lost for another reason.
 */
export function account(sendTimes: Float64Array, received: readonly Received[], windows: readonly Window[], maxInFlight: number): Accounting {
  const copies = new Uint8Array(sendTimes.length);
  let damaged = 0;
  let duplicates = 0;
  const latencies: number[] = [];
  for (const r of received) {
    if (r.flags !== 0 || r.seq >= sendTimes.length || Number.isNaN(sendTimes[r.seq]!)) {
      damaged++;
      continue;
    }
    if (copies[r.seq]! > 0) duplicates++;
    else latencies.push(r.at - sendTimes[r.seq]!);
    copies[r.seq] = Math.min(255, copies[r.seq]! + 1);
  }
  const sorted = [...windows].map((w, i) => ({ ...w, i })).sort((a, b) => a.start - b.start);
  const perWindow = windows.map(() => ({ lost: 0, first: Infinity, last: -Infinity }));
  /** The window each loss inside one belongs to, else -1. */
  const windowOf = new Int32Array(sendTimes.length).fill(-1);
  const count = (i: number, n: number, first: number, last: number) => {
    const p = perWindow[i]!;
    p.lost += n;
    p.first = Math.min(p.first, first);
    p.last = Math.max(p.last, last);
  };
  const runs: LossRun[] = [];
  let sent = 0;
  let sendErrors = 0;
  let delivered = 0;
  let lostInWindows = 0;
  let w = 0;
  for (let seq = 0; seq < sendTimes.length; seq++) {
    const t = sendTimes[seq]!;
    if (Number.isNaN(t)) { sendErrors++; continue; }
    sent++;
    if (copies[seq]! > 0) { delivered++; continue; }
    // Send times rise with seq (one sender, in order): the windows are walked once.
    while (w < sorted.length && sorted[w]!.end < t) w++;
    const inside = sorted.slice(w).find((x) => x.start <= t && t <= x.end);
    if (inside) {
      lostInWindows++;
      windowOf[seq] = inside.i;
      count(inside.i, 1, t, t);
      continue;
    }
    const run = runs.at(-1);
    if (run && run.last === seq - 1) run.last = seq;
    else runs.push({ first: seq, last: seq, sentAt: t });
  }
  const lostOutside: LossRun[] = [];
  let lostInFlight = 0;
  let inFlightMax = 0;
  for (const run of runs) {
    const into = run.last + 1 < sendTimes.length ? windowOf[run.last + 1]! : -1;
    const before = into < 0 ? Infinity : windows[into]!.start - run.sentAt;
    if (before > maxInFlight) {
      lostOutside.push(run);
      continue;
    }
    const n = run.last - run.first + 1;
    lostInWindows += n;
    lostInFlight += n;
    inFlightMax = Math.max(inFlightMax, before);
    count(into, n, run.sentAt, sendTimes[run.last]!);
  }
  latencies.sort((a, b) => a - b);
  const at = (q: number) => (latencies.length ? latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))]! : NaN);
  return {
    sent, sendErrors, delivered, duplicates, damaged,
    lost: sent - delivered,
    lostInWindows,
    lostInFlight,
    inFlightMax,
    lostOutside,
    windows: perWindow.map((p) => ({ lost: p.lost, lossSpan: p.lost ? p.last - p.first : 0 })),
    latency: { p50: at(0.5), p99: at(0.99), max: latencies.length ? latencies.at(-1)! : NaN },
  };
}
