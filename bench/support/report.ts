// The common parts of a lab benchmark's run and report: the interleaved
// order of its cases, and the lines that say what ran, where and when.
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const pad = (s: string, n: number): string => s.padStart(n);
/** Packets/s in thousands. */
export const kpps = (pps: number): string => `${(pps / 1000).toFixed(1)}k`;

/** Repetition `rep`'s order of the cases: every other one reversed, so drift does not favour a case. */
export const interleaved = <T>(cases: readonly T[], rep: number): T[] => (rep % 2 ? [...cases].reverse() : [...cases]);

/** Starts the record of a run: call at the start, and `lines()` at the end. */
export function runRecord(script: string): { lines(): string[] } {
  const load0 = loadavg();
  return {
    lines() {
      const load1 = loadavg();
      return [
        `command: node dist/bench/${script}.js ${process.argv.slice(2).join(' ')}`.trimEnd(),
        `kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, ${new Date().toISOString()}, load average `
          + `${load0[0]!.toFixed(2)} at start, ${load1[0]!.toFixed(2)} at end (${availableParallelism()} CPUs)`,
      ];
    },
  };
}
