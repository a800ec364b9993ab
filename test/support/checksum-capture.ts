// A full-size capture on one interface of a namespace (tcpdump), and an
// independent verdict on every checksum in it (tshark, whose IP and TCP
// checksum validation is off unless asked for).
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runCommand, spawnInNamespace } from '../../src/system/index.js';

/** Capture buffer (KiB): holds a whole test transfer even if tcpdump fell behind. */
const CAPTURE_BUFFER_KIB = 131072;
/**
 * Bytes kept per packet: the whole of any packet on a 1500-byte link. The
 * ring has one slot of this size per packet, so the snap length decides
 * how many packets the buffer holds (the default, 256 KiB, only 512).
 */
const SNAP_LENGTH = 2048;
const CAPTURE_START_TIMEOUT_MS = 10_000;

// Wireshark's checksum status values (epan/proto.h, PROTO_CHECKSUM_E_*).
const STATUS_BAD = 0;
const STATUS_GOOD = 1;

export interface CaptureResult {
  file: string;
  /** tcpdump's own count of packets it wrote. */
  captured: number;
  /** Packets that matched the filter (captured plus any lost on the way to tcpdump). */
  receivedByFilter: number;
  /** Packets the kernel dropped because tcpdump did not keep up. */
  droppedByKernel: number;
}

export interface Capture {
  /** Stops tcpdump (SIGINT, so it flushes and reports) and returns what it counted. */
  stop(): Promise<CaptureResult>;
  /** Removes the capture file. */
  dispose(): void;
}

/** Resolves once `file` kept its size for a second (at most 30 s). */
async function settled(file: string): Promise<void> {
  const size = () => { try { return statSync(file).size; } catch { return -1; } };
  const deadline = Date.now() + 30_000;
  let last = size();
  let still = 0;
  while (still < 5 && Date.now() < deadline) {
    await new Promise((r) => setTimeout(r, 200));
    const now = size();
    still = now === last ? still + 1 : 0;
    last = now;
  }
}

/** Starts tcpdump on `dev` in `netns`, inbound only, full packets, with a BPF `filter`; resolves once it listens. */
export async function startCapture(netns: string, dev: string, filter: string): Promise<Capture> {
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-capture-'));
  const file = join(dir, 'capture.pcap');
  const child: ChildProcess = spawnInNamespace(netns, 'tcpdump', [
    // Immediate mode: without it the last, unfinished ring block is lost when tcpdump stops.
    '-i', dev, '-Q', 'in', '-n', '-s', String(SNAP_LENGTH), '--immediate-mode', '-B', String(CAPTURE_BUFFER_KIB), '-w', file, filter,
  ], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  const closed = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`tcpdump on ${dev} did not start listening: ${stderr}`)), CAPTURE_START_TIMEOUT_MS);
    child.stderr!.on('data', (c: Buffer) => {
      stderr += c.toString();
      if (/listening on/.test(stderr)) { clearTimeout(timer); resolve(); }
    });
    void closed.then((code) => { clearTimeout(timer); reject(new Error(`tcpdump on ${dev} exited (${code}): ${stderr}`)); });
  });
  return {
    async stop() {
      // tcpdump leaves what is still in its ring unwritten when it stops: on a
      // loaded machine that was two thirds of a transfer. Stop once the file
      // has stopped growing.
      await settled(file);
      child.kill('SIGINT');
      await closed;
      const count = (what: string) => {
        const m = new RegExp(`(\\d+) packets? ${what}`).exec(stderr);
        if (!m) throw new Error(`tcpdump did not report "${what}": ${stderr}`);
        return Number(m[1]);
      };
      return { file, captured: count('captured'), receivedByFilter: count('received by filter'), droppedByKernel: count('dropped by kernel') };
    },
    dispose() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export interface ChecksumVerdicts {
  packets: number;
  /** TCP segments tshark validated, by verdict. */
  tcpGood: number;
  tcpBad: number;
  /** UDP datagrams tshark validated, by verdict. */
  udpGood: number;
  udpBad: number;
  /** IPv4 headers tshark validated, by verdict (IPv6 has no header checksum). */
  ipv4Good: number;
  ipv4Bad: number;
  /** TCP payload bytes in the capture. */
  payloadBytes: number;
  /** The longest IP packet seen (the segments the kernel cut). */
  largestIpPacket: number;
  /** Frame numbers of packets with any bad checksum (the first few). */
  badFrames: number[];
}

/** Every IPv4 header, TCP and UDP checksum in `file`, as tshark judges them. */
export async function checksumVerdicts(file: string): Promise<ChecksumVerdicts> {
  const out = await runCommand('tshark', [
    '-r', file, '-n', '-o', 'ip.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE',
    '-T', 'fields', '-E', 'separator=,', '-e', 'frame.number', '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status',
    '-e', 'udp.checksum.status', '-e', 'tcp.len', '-e', 'ip.len', '-e', 'ipv6.plen',
  ]);
  const v: ChecksumVerdicts = {
    packets: 0, tcpGood: 0, tcpBad: 0, udpGood: 0, udpBad: 0, ipv4Good: 0, ipv4Bad: 0, payloadBytes: 0, largestIpPacket: 0, badFrames: [],
  };
  for (const line of out.split('\n')) {
    if (line.trim() === '') continue;
    const [frame, ipStatus, tcpStatus, udpStatus, tcpLen, ipLen, ip6Payload] = line.split(',');
    v.packets++;
    const isBad = (status: string | undefined) => status !== '' && Number(status) === STATUS_BAD;
    const isGood = (status: string | undefined) => status !== '' && Number(status) === STATUS_GOOD;
    if (isGood(tcpStatus)) v.tcpGood++;
    if (isBad(tcpStatus)) v.tcpBad++;
    if (isGood(udpStatus)) v.udpGood++;
    if (isBad(udpStatus)) v.udpBad++;
    if (isGood(ipStatus)) v.ipv4Good++;
    if (isBad(ipStatus)) v.ipv4Bad++;
    const bad = isBad(tcpStatus) || isBad(udpStatus) || isBad(ipStatus);
    v.payloadBytes += Number(tcpLen || 0);
    v.largestIpPacket = Math.max(v.largestIpPacket, ipLen ? Number(ipLen) : Number(ip6Payload || 0) + 40);
    if (bad && v.badFrames.length < 10) v.badFrames.push(Number(frame));
  }
  return v;
}
