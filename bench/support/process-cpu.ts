// What the lab benchmarks read about the processes under test and the CPUs
// they share: the CPU a process has used, where it may run, each CPU's
// time by kind, and the packets each CPU's network stack received.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';

const clockTicks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** A CPU's time so far by kind, in nanoseconds (/proc/stat: the kernel's tick accounting, sampled at its HZ). */
export interface CpuTimes {
  /** Everything but idle and iowait. */
  busy: number;
  /** Softirq handlers: network receive and forwarding among them, whichever task they interrupted. */
  softirq: number;
  /** All of it, idle included: the window's length as this CPU counted it. */
  total: number;
}

/** `cpu` (all CPUs) or `cpuN` from /proc/stat. */
export function cpuTimes(cpu?: number): CpuTimes {
  const name = cpu === undefined ? 'cpu' : `cpu${cpu}`;
  const line = readFileSync('/proc/stat', 'utf8').split('\n').find((l) => l.split(/\s+/)[0] === name);
  if (!line) throw new Error(`/proc/stat has no ${name} line`);
  // cpuN user nice system idle iowait irq softirq steal ...
  const [user, nice, system, idle, iowait, irq, softirq, steal] = line.trim().split(/\s+/).slice(1).map((t) => (Number(t) / clockTicks) * 1e9);
  const busy = user! + nice! + system! + irq! + softirq! + steal!;
  return { busy, softirq: softirq!, total: busy + idle! + iowait! };
}

/** Busy CPU seconds of the whole machine, all CPUs (everything but idle and iowait). */
export const machineCpuSeconds = (): number => cpuTimes().busy / 1e9;

/**
 * Packets each CPU's network stack took in so far (/proc/net/softnet_stat,
 * a line per CPU: `processed`, every packet __netif_receive_skb handled
 * there, whether from a device's backlog or a TUN write; `dropped`, packets
 * its full backlog refused). The kernel's, not a namespace's.
 */
export function softnet(): Array<{ cpu: number; processed: number; dropped: number }> {
  return readFileSync('/proc/net/softnet_stat', 'utf8').trim().split('\n').map((line, i) => {
    const f = line.trim().split(/\s+/).map((x) => parseInt(x, 16));
    // The 13th column is the CPU's number (kernel 5.10 and later); lines of offline CPUs are left out.
    return { cpu: f[12] ?? i, processed: f[0]!, dropped: f[1]! };
  });
}

/**
 * Nanoseconds on CPU of every thread a process has now (the first field of
 * /proc/PID/task/TID/schedstat: the scheduler's own clock, not ticks, so a
 * short run of a small process is measured, not sampled).
 */
export function processCpuNs(pid: number): number {
  let ns = 0;
  for (const tid of readdirSync(`/proc/${pid}/task`)) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, 'utf8').split(' ')[0]);
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return ns;
}

/** Confines every thread of a process (those it starts later too) to one CPU. */
export function pinProcess(pid: number, cpu: number): void {
  execFileSync('taskset', ['-a', '-p', '-c', String(cpu), String(pid)], { stdio: 'ignore' });
}
