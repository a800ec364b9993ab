// Where the kernel does the receive work of a lab link, so a benchmark can
// put a balancer's kernel side on the CPU it measures: RPS sends a veth's
// packets to one CPU's backlog (softirq there), or a threaded NAPI takes
// them in a kernel thread of the veth's own, pinned to a CPU, whose CPU time
// schedstat then counts like a process's (softirq time is only sampled by
// ticks on these kernels, and shared with whatever it interrupted).
import { readdirSync, readFileSync } from 'node:fs';
import type { Lab, LabRole } from '../../tools/lab/index.js';
import { disableTxChecksumOffload, enableGro } from '../../test/support/ethtool.js';
import { pinProcess } from './process-cpu.js';

/** RPS: what `dev` in `role` receives is taken in by `cpu`'s network stack. */
export async function receiveOn(lab: Lab, role: LabRole, dev: string, cpu: number): Promise<void> {
  await lab.exec(role, 'tee', [`/sys/class/net/${dev}/queues/rx-0/rps_cpus`], (1 << cpu).toString(16));
}

/** Pids of the kernel's NAPI threads of devices named `dev` (in any namespace): `napi/DEV-ID`. */
function napiThreads(dev: string): number[] {
  return readdirSync('/proc').filter((d) => /^\d+$/.test(d)).filter((pid) => {
    try {
      return readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith(`napi/${dev}-`);
    } catch {
      return false;
    }
  }).map(Number);
}

/**
 * A veth pair's receive on `to`'s side in a NAPI thread of its own, pinned
 * to `cpu`; returns the thread's pid. A veth receives through NAPI when GRO
 * is on, and only packets from a peer without TSO (veth.c,
 * veth_skb_is_eligible_for_gro), so the sending side's checksum offload,
 * and with it TSO, is turned off: the sender's kernel then computes what
 * checksums it leaves open (the benchmarks' senders fill them in anyway).
 */
export async function napiThreadOn(lab: Lab, from: { role: LabRole; dev: string }, to: { role: LabRole; dev: string }, cpu: number): Promise<number> {
  const sender = await disableTxChecksumOffload(from.dev, lab.where(from.role));
  if (sender.tso) throw new Error(`${from.dev}: TSO is still on`);
  if (!(await enableGro(to.dev, lab.where(to.role)))) throw new Error(`${to.dev}: GRO did not turn on`);
  const before = new Set(napiThreads(to.dev));
  await lab.exec(to.role, 'tee', [`/sys/class/net/${to.dev}/threaded`], '1');
  const fresh = napiThreads(to.dev).filter((pid) => !before.has(pid));
  if (fresh.length !== 1) throw new Error(`${to.dev}: expected one new NAPI thread, found ${fresh.length}`);
  pinProcess(fresh[0]!, cpu);
  return fresh[0]!;
}
