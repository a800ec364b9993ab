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
import { addressText } from '../../tools/packets/address.js';
import { buildPacket, udp } from '../../tools/packets/build.js';
import { read16 } from '../../tools/packets/bytes.js';
import { onesSum, pseudoHeaderSum } from '../../tools/packets/checksum.js';
import { IPV4, PROTO, UDP } from '../../tools/packets/layout.js';

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
  if (p.length < IPV4.SIZE || p[IPV4.VERSION_IHL] >> 4 !== 4 || p[IPV4.PROTOCOL] !== PROTO.UDP) return null;
  const ihl = (p[IPV4.VERSION_IHL] & 0xf) * 4;
  const total = read16(p, IPV4.TOTAL_LENGTH);
  if (total > p.length || total < ihl + UDP.SIZE) return null;
  const udp = p.subarray(ihl, total);
  const src = p.subarray(IPV4.SOURCE, IPV4.SOURCE + 4);
  const dst = p.subarray(IPV4.DESTINATION, IPV4.DESTINATION + 4);
  const ipOk = onesSum(p.subarray(0, ihl)) === 0xffff;
  const udpOk = onesSum(udp, pseudoHeaderSum(src, dst, PROTO.UDP, udp.length)) === 0xffff;
  return {
    src: addressText(src),
    dst: addressText(dst),
    srcPort: read16(udp, UDP.SOURCE_PORT),
    dstPort: read16(udp, UDP.DESTINATION_PORT),
    payload: udp.subarray(UDP.SIZE),
    checksumsValid: ipOk && udpOk,
  };
}

/** Builds an IPv4/UDP packet with both checksums computed. */
export const buildUdp = (d: UdpDatagram): Uint8Array =>
  buildPacket({ src: d.src, dst: d.dst, id: 0, protocol: PROTO.UDP, transport: udp(d.payload, [d.srcPort, d.dstPort]) });

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
