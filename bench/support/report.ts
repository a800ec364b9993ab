// The common parts of a benchmark's run and report: the interleaved order
// of its cases, and the lines that say what ran, where, when and under
// what load.
import { execFileSync } from 'node:child_process';
import { availableParallelism, loadavg } from 'node:os';
import { relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
export const pad = (s: string, n: number): string => s.padStart(n);
/** Packets/s in thousands. */
export const kpps = (pps: number): string => `${(pps / 1000).toFixed(1)}k`;

/** Repetition `rep`'s order of the cases: every other one reversed, so drift does not favour a case. */
export const interleaved = <T>(cases: readonly T[], rep: number): T[] => (rep % 2 ? [...cases].reverse() : [...cases]);

/** Repository root: this file runs as dist/bench/support/report.js. */
const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** The command line as the user gave it: through npm when npm ran it (`npm run bench:tun -- --reps 5`), else node and the script. */
function commandLine(): string {
  const args = process.argv.slice(2).join(' ');
  const script = process.env.npm_lifecycle_event;
  if (script !== undefined && process.env.npm_lifecycle_script?.includes(relative(ROOT, process.argv[1]!))) {
    return `npm run ${script}${args ? ` -- ${args}` : ''}`;
  }
  return `node ${relative(ROOT, process.argv[1]!)} ${args}`.trimEnd();
}

/**
 * Starts the record of a run: call at the start, `sample()` once per
 * repetition (the load average is what tells a quiet run from a loaded one,
 * and it moves during a run), and `lines()` at the end.
 */
export function runRecord(): { sample(): void; lines(): string[] } {
  const loads = [loadavg()[0]!];
  return {
    sample() {
      loads.push(loadavg()[0]!);
    },
    lines() {
      loads.push(loadavg()[0]!);
      const load = (x: number): string => x.toFixed(2);
      return [
        `command: ${commandLine()}`,
        `kernel ${execFileSync('uname', ['-r'], { encoding: 'utf8' }).trim()}, Node ${process.version}, ${new Date().toISOString()}, load average `
          + `${load(loads[0]!)} at start, ${load(loads.at(-1)!)} at end, ${load(Math.min(...loads))}–${load(Math.max(...loads))} `
          + `over the run (${availableParallelism()} CPUs)`,
      ];
    },
  };
}
