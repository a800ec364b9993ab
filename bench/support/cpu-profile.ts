// Where a benchmark's CPU goes, machine-wide: `perf record -a` over a
// window of a run, its samples sorted into a few kinds of work, per byte
// the run moved. It answers "is the extra cost ours or the kernel's", not
// "which line": for that, open the .data file with `perf report`.
//
// perf samples on a timer here (a VM without a PMU), so a sample is CPU
// time, and work done with interrupts off is charged to the point where
// they come back on (`pvm_irq_enable` on this hypervisor,
// `native_irq_enable`/`_raw_spin_unlock_irqrestore` elsewhere): the
// wake-ups of other tasks and the softirq work they close.
import { execFile, execFileSync } from 'node:child_process';

/** The kinds of work a sample is sorted into, in the order they are reported. */
export const PROFILE_KINDS = [
  'copies', 'irq-off', 'kernel', 'rewriter user space', 'iperf3 user space', 'idle', 'other processes',
] as const;
export type ProfileKind = (typeof PROFILE_KINDS)[number];

export interface CpuProfile {
  /** Samples per kind. */
  samples: Record<ProfileKind, number>;
  /** Seconds one sample stands for. */
  period: number;
  file: string;
}

const FREQUENCY = 999;
/** Copies between user space and the kernel, and the checks every copy makes. */
const COPY_SYMBOLS = new Set([
  '_copy_to_iter', '_copy_from_iter', 'copy_page_to_iter', 'copy_page_from_iter', '__check_object_size',
  '__virt_addr_valid', 'check_heap_object', 'rep_movs_alternative', 'copy_user_generic_string', 'copy_user_enhanced_fast_string',
]);
const IRQ_ENABLE_SYMBOLS = new Set(['pvm_irq_enable', 'native_irq_enable', '__raw_callee_save_pvm_irq_enable']);
const IDLE_SYMBOLS = new Set(['pvm_safe_halt_hc', 'default_idle', 'native_safe_halt', 'pv_native_safe_halt', 'cpu_idle_poll']);
/**
 * Threads whose samples belong to the data path: the traffic's ends, the
 * rewriter, the kernel's own threads. The benchmark's own process is a
 * `node` too, counted as the rewriter: it waits for iperf3 meanwhile
 * (0.004 ns/B in the nftables case, where it is the only `node`).
 */
const REWRITERS = new Set(['node', 'tun-loop', 'l3dsr']);
const PATH_COMMS = (comm: string): boolean =>
  comm === 'iperf3' || REWRITERS.has(comm) || comm === 'swapper' || /^(ksoftirqd|kworker|migration|rcu_)/.test(comm);

export function hasPerf(): boolean {
  try {
    execFileSync('perf', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** Records every CPU for `seconds` into `file` (call it while the traffic runs). */
export function recordCpus(file: string, seconds: number): Promise<void> {
  return new Promise((resolve, reject) => {
    execFile('perf', ['record', '-a', '-g', '-F', String(FREQUENCY), '-o', file, '--', 'sleep', String(seconds)], (err, _out, stderr) =>
      (err ? reject(new Error(`perf record: ${err.message}\n${stderr}`)) : resolve()));
  });
}

/** Sorts the samples of `file` (one `perf report` line per comm, object and symbol) into kinds. */
export function readProfile(file: string): CpuProfile {
  const text = execFileSync('perf', ['report', '-i', file, '--no-children', '--sort', 'comm,dso,sym', '-g', 'none', '--stdio', '-n'], {
    encoding: 'utf8', maxBuffer: 64 << 20, stdio: ['ignore', 'pipe', 'ignore'],
  });
  return { samples: samplesByKind(text), period: 1 / FREQUENCY, file };
}

/** The samples of a `perf report --sort comm,dso,sym -n` listing, by kind. */
export function samplesByKind(text: string): Record<ProfileKind, number> {
  const samples = Object.fromEntries(PROFILE_KINDS.map((k) => [k, 0])) as Record<ProfileKind, number>;
  for (const line of text.split('\n')) {
    // The object's name may have spaces (`[JIT] tid 6420`): the space marker `[k]`/`[.]` ends it.
    const m = /^\s*[\d.]+%\s+(\d+)\s+(\S+)\s+.*?\s\[([k.])\]\s+(\S+)/.exec(line);
    if (!m) continue;
    const [, count, comm, space, symbol] = m;
    samples[kindOf(comm!, space === 'k', symbol!)] += Number(count);
  }
  return samples;
}

function kindOf(comm: string, kernel: boolean, symbol: string): ProfileKind {
  if (IDLE_SYMBOLS.has(symbol)) return 'idle';
  if (!PATH_COMMS(comm)) return 'other processes';
  if (!kernel) return REWRITERS.has(comm) ? 'rewriter user space' : 'iperf3 user space';
  if (COPY_SYMBOLS.has(symbol)) return 'copies';
  if (IRQ_ENABLE_SYMBOLS.has(symbol)) return 'irq-off';
  return 'kernel';
}

/** Nanoseconds of CPU per byte for each kind, and their sum over the data path (idle and other processes left out). */
export function nsPerByte(p: CpuProfile, bytes: number): Record<ProfileKind | 'data path', number> {
  const per = (n: number) => (n * p.period * 1e9) / bytes;
  const out = Object.fromEntries(PROFILE_KINDS.map((k) => [k, per(p.samples[k])])) as Record<ProfileKind | 'data path', number>;
  out['data path'] = PROFILE_KINDS.filter((k) => k !== 'idle' && k !== 'other processes').reduce((s, k) => s + out[k], 0);
  return out;
}
