// Test helpers for the TUN addon: a network namespace the test process's
// main thread joins (so dgram sockets and TUN devices opened here live in
// it), batch memory laid out like the daemon's, and IPv4/UDP packet
// builders with correct checksums.
import { execFileSync } from 'node:child_process';
import { accessSync, constants, existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BatchLayout } from '../../src/tun/device.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const NETNS_ADDON = join(root, 'build', 'Release', 'l3dsr_test_netns.node');

interface NetnsAddon {
  enter(path: string): number;
  restore(fd: number): void;
}

/** Says why the TUN tests cannot run here. Their suites skip without root
 * (privileged()); this fails them where they must run (CI) yet cannot. */
export function requireTunLab(): void {
  if (process.getuid?.() !== 0) throw new Error('TUN tests need root (network namespaces, /dev/net/tun)');
  try {
    accessSync('/dev/net/tun', constants.R_OK | constants.W_OK);
  } catch {
    throw new Error('TUN tests need /dev/net/tun');
  }
  if (!existsSync(NETNS_ADDON)) throw new Error(`test addon missing: ${NETNS_ADDON} (run npm run build)`);
}

export function sh(cmd: string, ...args: string[]): string {
  return execFileSync(cmd, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
}

let labCount = 0;

/** A network namespace with a unique name that this thread is inside of
 * until dispose(). Commands run through sh() run inside it too. */
export class Lab {
  readonly ns: string;
  readonly #addon: NetnsAddon;
  #saved = -1;

  constructor() {
    requireTunLab();
    this.ns = `l3tun${process.pid}x${labCount++}`;
    this.#addon = createRequire(import.meta.url)(NETNS_ADDON) as NetnsAddon;
    sh('ip', 'netns', 'add', this.ns);
    try {
      this.#saved = this.#addon.enter(`/run/netns/${this.ns}`);
      sh('ip', 'link', 'set', 'lo', 'up');
      // IPv6 router solicitations and MLD reports would show up in the TUN.
      sh('sysctl', '-qw', 'net.ipv6.conf.all.disable_ipv6=1', 'net.ipv6.conf.default.disable_ipv6=1');
      sh('sysctl', '-qw', 'net.ipv4.conf.all.rp_filter=0', 'net.ipv4.conf.default.rp_filter=0');
      sh('ip', 'addr', 'add', `${LOCAL_ADDRESS}/24`, 'dev', 'lo');
    } catch (err) {
      this.dispose();
      throw err;
    }
  }

  /** Brings a TUN up and routes `prefix` into it. */
  routeInto(dev: string, prefix: string): void {
    sh('ip', 'link', 'set', dev, 'up');
    sh('ip', 'route', 'add', prefix, 'dev', dev);
  }

  linkExists(dev: string): boolean {
    try {
      sh('ip', 'link', 'show', dev);
      return true;
    } catch {
      return false;
    }
  }

  /** Packets the kernel received on `dev`: for a TUN, those written into
   * it. (Read through netlink: /sys shows the namespace that mounted it.) */
  rxPackets(dev: string): number {
    const [link] = JSON.parse(sh('ip', '-j', '-s', 'link', 'show', 'dev', dev));
    return link.stats64.rx.packets;
  }

  dispose(): void {
    if (this.#saved >= 0) this.#addon.restore(this.#saved);
    this.#saved = -1;
    try {
      sh('ip', 'netns', 'del', this.ns);
    } catch {
      // already gone
    }
  }
}

/** Bound by the test sockets; on lo in every lab. */
export const LOCAL_ADDRESS = '198.51.100.1';
/** Routed into the TUN under test. */
export const REMOTE_PREFIX = '203.0.113.0/24';
export const REMOTE_ADDRESS = '203.0.113.7';

/** A WebAssembly memory holding packet slots and the batch descriptor. */
export class BatchMemory {
  readonly memory: WebAssembly.Memory;
  readonly layout: BatchLayout;
  readonly slots: Uint32Array;
  readonly lengths: Uint32Array;

  constructor(batchMax: number, slotCount = batchMax * 2, slotSize = 2048) {
    const descBytes = batchMax * 4;
    const slotBase = Math.ceil((2 * descBytes) / 4096) * 4096;
    const bytes = slotBase + slotCount * slotSize;
    this.memory = new WebAssembly.Memory({ initial: Math.ceil(bytes / 65536) });
    this.layout = { slotBase, slotSize, slotCount, slotsOffset: 0, lengthsOffset: descBytes, batchMax };
    this.slots = new Uint32Array(this.memory.buffer, 0, batchMax);
    this.lengths = new Uint32Array(this.memory.buffer, descBytes, batchMax);
  }

  /** The packet of batch entry i, as a view into its slot. */
  packet(i: number): Uint8Array {
    const offset = this.layout.slotBase + this.slots[i] * this.layout.slotSize;
    return new Uint8Array(this.memory.buffer, offset, this.lengths[i]);
  }
}

// IPv4 / UDP field offsets (RFC 791, RFC 768).
const IP_VERSION_IHL = 0;
const IP_TOTAL_LENGTH = 2;
const IP_TTL = 8;
const IP_PROTOCOL = 9;
const IP_CHECKSUM = 10;
const IP_SRC = 12;
const IP_DST = 16;
const IP_HEADER_LENGTH = 20;
const UDP_SRC_PORT = 0;
const UDP_DST_PORT = 2;
const UDP_LENGTH = 4;
const UDP_CHECKSUM = 6;
const UDP_HEADER_LENGTH = 8;
const PROTO_UDP = 17;

function sum16(bytes: Uint8Array, initial = 0): number {
  let s = initial;
  for (let i = 0; i + 1 < bytes.length; i += 2) s += (bytes[i] << 8) | bytes[i + 1];
  if (bytes.length % 2) s += bytes[bytes.length - 1] << 8;
  while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
  return s;
}
const view = (p: Uint8Array) => new DataView(p.buffer, p.byteOffset, p.byteLength);

function addressBytes(a: string): number[] {
  return a.split('.').map(Number);
}
function addressText(p: Uint8Array, at: number): string {
  return Array.from(p.subarray(at, at + 4)).join('.');
}

export interface UdpDatagram {
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  payload: Uint8Array;
}

/** Parses an IPv4/UDP packet; null for anything else. Also reports whether
 * both checksums are valid. */
export function parseUdp(p: Uint8Array): (UdpDatagram & { checksumsValid: boolean }) | null {
  if (p.length < IP_HEADER_LENGTH || p[IP_VERSION_IHL] >> 4 !== 4 || p[IP_PROTOCOL] !== PROTO_UDP) return null;
  const ihl = (p[IP_VERSION_IHL] & 0xf) * 4;
  const dv = view(p);
  const total = dv.getUint16(IP_TOTAL_LENGTH);
  if (total > p.length || total < ihl + UDP_HEADER_LENGTH) return null;
  const udp = p.subarray(ihl, total);
  const ipOk = sum16(p.subarray(0, ihl)) === 0xffff;
  const udpOk = udpSum(p.subarray(IP_SRC, IP_SRC + 4), p.subarray(IP_DST, IP_DST + 4), udp) === 0xffff;
  return {
    src: addressText(p, IP_SRC),
    dst: addressText(p, IP_DST),
    srcPort: dv.getUint16(ihl + UDP_SRC_PORT),
    dstPort: dv.getUint16(ihl + UDP_DST_PORT),
    payload: udp.subarray(UDP_HEADER_LENGTH),
    checksumsValid: ipOk && udpOk,
  };
}

function udpSum(src: Uint8Array, dst: Uint8Array, udp: Uint8Array): number {
  const pseudo = new Uint8Array(12);
  pseudo.set(src, 0);
  pseudo.set(dst, 4);
  pseudo[9] = PROTO_UDP;
  view(pseudo).setUint16(10, udp.length);
  return sum16(udp, sum16(pseudo));
}

/** Builds an IPv4/UDP packet with both checksums computed. */
export function buildUdp(d: UdpDatagram): Uint8Array {
  const udpLength = UDP_HEADER_LENGTH + d.payload.length;
  const p = new Uint8Array(IP_HEADER_LENGTH + udpLength);
  const dv = view(p);
  p[IP_VERSION_IHL] = 0x45;
  dv.setUint16(IP_TOTAL_LENGTH, p.length);
  p[IP_TTL] = 64;
  p[IP_PROTOCOL] = PROTO_UDP;
  p.set(addressBytes(d.src), IP_SRC);
  p.set(addressBytes(d.dst), IP_DST);
  dv.setUint16(IP_CHECKSUM, ~sum16(p.subarray(0, IP_HEADER_LENGTH)) & 0xffff);
  const udp = p.subarray(IP_HEADER_LENGTH);
  const uv = view(udp);
  uv.setUint16(UDP_SRC_PORT, d.srcPort);
  uv.setUint16(UDP_DST_PORT, d.dstPort);
  uv.setUint16(UDP_LENGTH, udpLength);
  udp.set(d.payload, UDP_HEADER_LENGTH);
  const c = ~udpSum(p.subarray(IP_SRC, IP_SRC + 4), p.subarray(IP_DST, IP_DST + 4), udp) & 0xffff;
  uv.setUint16(UDP_CHECKSUM, c === 0 ? 0xffff : c);
  return p;
}

/** Rewrites a datagram in place into its answer: addresses and ports
 * swapped, payload upper-cased, checksums recomputed. Returns false if it
 * does not fit (payload sizes are kept, so it always does). */
export function answerInPlace(p: Uint8Array, d: UdpDatagram): boolean {
  const answer = buildUdp({
    src: d.dst,
    dst: d.src,
    srcPort: d.dstPort,
    dstPort: d.srcPort,
    payload: new TextEncoder().encode(new TextDecoder().decode(d.payload).toUpperCase()),
  });
  if (answer.length > p.length) return false;
  p.set(answer);
  return true;
}

/** Resolves when `predicate` holds, checking every 5 ms; rejects with
 * `what` after `ms` (a hang detector, not a performance threshold). */
export async function waitFor(predicate: () => boolean, what: string, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export const delay = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
