// What the per-core capacity benchmarks share (capacity.ts: the real
// server's rewriter; lb-capacity.ts: the balancer): their common flags, the
// load offered at each rate, the repetitions in interleaved order, and the
// tables of medians and of ratios within a repetition.
import type { Lab } from '../../tools/lab/index.js';
import { hasTrafgen, socketFlood, trafgenFlood, type FloodSpec, type Offered } from '../lab-senders.js';
import { interleaved, kpps, pad } from './report.js';
import { spread, median } from './stats.js';

/** Packets/s paced by labtool, or `flood`: trafgen (else labtool) as fast as it goes. */
export type Rate = number | 'flood';
export type Sender = 'trafgen' | 'socket';

export interface CapacityCase {
  id: string;
  label: string;
}

/** One case at one rate in one repetition: what every capacity benchmark measures, and its own figures besides. */
export interface CapacityTrial {
  id: string;
  rate: Rate;
  rep: number;
  offeredPps: number;
  deliveredPps: number;
}

export interface CapacitySettings<C extends CapacityCase> {
  cases: C[];
  rates: Rate[];
  reps: number;
  sender: Sender;
  /** What each flood sends; the address and the sender's CPU are the benchmark's. */
  spec: Omit<FloodSpec, 'address' | 'cpu'>;
}

/** The flags both take (bench/support/args.ts options, with their help); a benchmark spreads its own next to them. */
export const capacityFlags = (known: readonly CapacityCase[], rates: string, what: string) => ({
  seconds: { type: 'string', default: '3', value: 'S', help: 'seconds per case, rate and repetition' },
  reps: { type: 'string', default: '5', value: 'N', help: 'interleaved repetitions' },
  rates: { type: 'string', default: rates, value: 'LIST', help: 'packets/s of the paced sender, or flood' },
  cases: { type: 'string', default: known.map((c) => c.id).join(','), value: 'LIST', help: `the ${what} (the script's header says what each is)` },
  flows: { type: 'string', default: '16', value: 'N', help: 'UDP flows' },
  size: { type: 'string', default: '64', value: 'BYTES', help: 'UDP payload' },
  sender: { type: 'string', value: 'trafgen|socket', help: "the flood's sender (default trafgen when installed, else socket)" },
} as const);

type FlagValues = { [K in keyof ReturnType<typeof capacityFlags>]?: string };

/** The common flags' values checked: unknown cases, bad rates and senders are refused with what is known. */
export async function capacitySettings<C extends CapacityCase>(values: FlagValues, known: readonly C[], port: number): Promise<CapacitySettings<C>> {
  const cases = values.cases!.split(',').map((id) => {
    const c = known.find((x) => x.id === id);
    if (!c) throw new Error(`--cases: unknown case ${id} (known: ${known.map((x) => x.id).join(', ')})`);
    return c;
  });
  const rates: Rate[] = values.rates!.split(',').map((r) => {
    if (r === 'flood') return 'flood';
    const n = Number(r);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`--rates: packets/s or flood, got ${r}`);
    return n;
  });
  const sender = values.sender ?? ((await hasTrafgen()) ? 'trafgen' : 'socket');
  if (sender !== 'trafgen' && sender !== 'socket') throw new Error(`--sender: trafgen or socket, got ${sender}`);
  return {
    cases, rates, reps: Number(values.reps), sender,
    spec: { port, seconds: Number(values.seconds), flows: Number(values.flows), size: Number(values.size) },
  };
}

/** The load of one trial: paced by labtool, or the flood of the chosen sender. */
export function offer(lab: Lab, rate: Rate, spec: FloodSpec, sender: Sender): Promise<Offered> {
  if (rate !== 'flood') return socketFlood(lab, spec, rate);
  return sender === 'trafgen' ? trafgenFlood(lab, spec) : socketFlood(lab, spec);
}

/** Every case at every rate, each repetition's cases in interleaved order; `said` is the progress line of a trial (to stderr). */
export async function runTrials<C extends CapacityCase, T>(
  s: CapacitySettings<C>, labelWidth: number, trial: (c: C, rate: Rate, rep: number) => Promise<T>, said: (t: T) => string,
  record?: { sample(): void },
): Promise<T[]> {
  const trials: T[] = [];
  for (let r = 0; r < s.reps; r++) {
    record?.sample();
    for (const rate of s.rates) {
      for (const c of interleaved(s.cases, r)) {
        const t = await trial(c, rate, r);
        trials.push(t);
        process.stderr.write(`rep ${r + 1} ${String(rate).padStart(6)} ${c.label.padEnd(labelWidth)} ${said(t)}\n`);
      }
    }
  }
  return trials;
}

/** A figure of a trial, reported as median (min–max); undefined where a case has none. */
export interface Figure<T> {
  title: string;
  width: number;
  value(t: T): number | undefined;
  format(x: number): string;
}

const spreadOf = <T>(ts: readonly T[], f: Figure<T>): string => {
  const xs = ts.map((t) => f.value(t)).filter((x): x is number => x !== undefined);
  return xs.length ? spread(xs, f.format) : '-';
};

/** One rate's table: per case the median offered, and delivered packets/s and `figures` as median (min–max). */
export function rateTable<T extends CapacityTrial>(
  trials: readonly T[], cases: readonly CapacityCase[], rate: Rate, sender: Sender, labelWidth: number, figures: readonly Figure<T>[],
): string[] {
  const at = trials.filter((t) => t.rate === rate);
  const how = rate === 'flood' ? `flood (${sender})` : `paced ${kpps(rate)} pps (labtool)`;
  const out = [`${how}:`, `${'case'.padEnd(labelWidth)}${pad('offered', 9)}${pad('delivered pps', 26)}${figures.map((f) => pad(f.title, f.width)).join('')}`];
  for (const c of cases) {
    const ts = at.filter((t) => t.id === c.id);
    out.push(`${c.label.padEnd(labelWidth)}${pad(kpps(median(ts.map((t) => t.offeredPps))), 9)}`
      + `${pad(spread(ts.map((t) => t.deliveredPps), kpps), 26)}${figures.map((f) => pad(spreadOf(ts, f), f.width)).join('')}`);
  }
  return out;
}

/**
 * Ratios of case a to case b within each repetition (measured seconds
 * apart, so the machine's drift mostly cancels), then their spread: one
 * line per pair of cases that both ran, over `figures` by name.
 */
export function pairedRatios<T extends CapacityTrial>(
  trials: readonly T[], cases: readonly CapacityCase[], rate: Rate, pairs: ReadonlyArray<readonly [string, string]>,
  figures: ReadonlyArray<{ name: string; value(t: T): number | undefined }>,
): string[] {
  const of = (id: string) => trials.filter((t) => t.rate === rate && t.id === id);
  const has = (id: string) => cases.some((c) => c.id === id);
  const paired = (a: string, b: string, value: (t: T) => number | undefined) => {
    const xs = of(a).flatMap((t) => of(b).filter((u) => u.rep === t.rep).flatMap((u) => {
      const x = value(t);
      const y = value(u);
      return x === undefined || y === undefined ? [] : [x / y];
    }));
    return xs.length ? spread(xs, (x) => x.toFixed(3)) : '-';
  };
  return pairs.filter(([a, b]) => has(a) && has(b))
    .map(([a, b]) => `  ${a} / ${b}: ${figures.map((f) => `${f.name} ${paired(a, b, f.value)}`).join(', ')}`);
}
