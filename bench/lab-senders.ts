// Offered load for the lab benchmarks, from cli towards the LB: trafgen
// (netsniff-ng: crafted frames on a packet ring, the fastest sender here) or
// the compiled labtool (sendmmsg on UDP sockets, optionally paced). What was
// offered is read from the counters of cli's link to the LB, the same way
// for both.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LAB_INTERFACES, LAB_PLAN, type Lab, type LabRole } from '../tools/lab/index.js';
import { ipJson } from '../src/system/index.js';
import { flood } from '../test/support/daemon-traffic.js';
import { trafgenUdp } from './support/trafgen.js';

/** Source ports FLOW_PORT_BASE + 0 … flows-1 (trafgen varies the low byte). */
const FLOW_PORT_BASE = 0x1300;
const MAX_TRAFGEN_FLOWS = 256;

export interface FloodSpec {
  address: string;
  port: number;
  seconds: number;
  flows: number;
  /** UDP payload bytes. */
  size: number;
  /** trafgen worker processes (default 1). */
  cpus?: number;
  /** The one CPU the sender runs on (trafgen: its one worker; `cpus` is ignored). */
  cpu?: number;
  /**
   * trafgen's transmit ring in KiB (default: trafgen's). Every frame in
   * flight holds a slot of it, so a small ring bounds what waits for
   * another CPU, charged to trafgen's socket, below its send buffer
   * (beyond that trafgen gets EAGAIN and stops).
   */
  ringKiB?: number;
}

export interface Offered {
  /** Packets cli's link to the LB transmitted during the flood. */
  packets: number;
  seconds: number;
}

interface LinkStats { stats64: { rx: { packets: number; dropped: number }; tx: { packets: number; dropped: number } } }

export async function linkStats(lab: Lab, role: LabRole, dev: string): Promise<LinkStats['stats64']> {
  const [link] = await ipJson<LinkStats[]>(['-s', 'link', 'show', 'dev', dev], lab.where(role));
  return link!.stats64;
}

export async function hasTrafgen(): Promise<boolean> {
  return new Promise((resolve) => {
    const c = spawn('sh', ['-c', 'command -v trafgen'], { stdio: 'ignore' });
    c.once('close', (code) => resolve(code === 0));
    c.once('error', () => resolve(false));
  });
}

/** A trafgen packet: Ethernet to the LB, IPv4 from the client, UDP with per-flow source ports, checksums computed. */
const trafgenPacket = (lbMac: string, cliMac: string, spec: FloodSpec): string => trafgenUdp({
  src: LAB_PLAN[4].client, dst: spec.address, srcPort: FLOW_PORT_BASE, dstPort: spec.port, size: spec.size, flows: spec.flows,
  macs: { dst: lbMac, src: cliMac }, udpChecksum: true, cpu: spec.cpu,
});

/** trafgen on cli's link to the LB for `seconds`, as fast as it goes (IPv4 only). */
export async function trafgenFlood(lab: Lab, spec: FloodSpec): Promise<Offered> {
  if (spec.flows < 1 || spec.flows > MAX_TRAFGEN_FLOWS) throw new Error(`trafgen flood: 1-${MAX_TRAFGEN_FLOWS} flows`);
  const [lb] = await ipJson<Array<{ address: string }>>(['link', 'show', 'dev', LAB_INTERFACES.lbToCli], lab.where('lb'));
  const [cli] = await ipJson<Array<{ address: string }>>(['link', 'show', 'dev', LAB_INTERFACES.cliToLb], lab.where('cli'));
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-trafgen-'));
  try {
    const conf = join(dir, 'udp.cfg');
    writeFileSync(conf, trafgenPacket(lb!.address, cli!.address, spec));
    const before = await linkStats(lab, 'cli', LAB_INTERFACES.cliToLb);
    const started = process.hrtime.bigint();
    // trafgen forks its workers: signal the whole group (its own), or the workers keep sending.
    // --no-sock-mem / --notouch-irq: leave the machine's settings alone.
    const child = spawn('ip', ['netns', 'exec', lab.namespaces.cli, 'trafgen', '--dev', LAB_INTERFACES.cliToLb, '--conf', conf,
      // trafgen pins worker i to CPU i; a packet pinned to one CPU leaves every other worker idle.
      '--cpus', String(spec.cpu === undefined ? spec.cpus ?? 1 : spec.cpu + 1), '--no-sock-mem', '--notouch-irq', '--no-cpu-stats',
      ...(spec.ringKiB === undefined ? [] : ['--ring-size', `${spec.ringKiB}KiB`])], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    let stderr = '';
    child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
    const exited = new Promise<number | null>((r) => child.once('close', (code) => r(code)));
    const early = await Promise.race([exited, new Promise<'running'>((r) => setTimeout(() => r('running'), spec.seconds * 1000))]);
    if (early !== 'running') throw new Error(`trafgen exited (${early}) early: ${stderr.trim()}`);
    process.kill(-child.pid!, 'SIGINT');
    await exited;
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    const after = await linkStats(lab, 'cli', LAB_INTERFACES.cliToLb);
    return { packets: after.tx.packets - before.tx.packets, seconds };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** labtool (sendmmsg) from cli; rate 0 = as fast as it goes. */
export async function socketFlood(lab: Lab, spec: FloodSpec, rate = 0): Promise<Offered> {
  const before = await linkStats(lab, 'cli', LAB_INTERFACES.cliToLb);
  const r = await flood(lab, { address: spec.address, port: spec.port, size: spec.size, seconds: spec.seconds, rate, flows: spec.flows, cpu: spec.cpu });
  const after = await linkStats(lab, 'cli', LAB_INTERFACES.cliToLb);
  return { packets: after.tx.packets - before.tx.packets, seconds: r.seconds };
}
