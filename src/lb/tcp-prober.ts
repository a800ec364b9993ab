// One TCP health check through the DSR path (docs/lb.md#health-checks): a
// SYN from the balancer's own address to RIP:PORT, carrying the VIP's DSCP,
// as the balancer would forward a client's. The real server's l3dsr turns
// the destination into the VIP, the service on the VIP answers, and the
// SYN-ACK comes back straight from VIP:PORT. Only that answer counts: the
// kernel's TCP has no socket for it, so the check reads it from a raw
// socket, and a plain connect() to the RIP cannot work (its answer would
// come from the VIP). An RST from VIP:PORT means the service is not there.
//
// An answer is taken only when it comes from the VIP and port probed, to
// the local port of a check in progress, and acknowledges that check's
// random initial sequence number: spoofed, stale or stray segments are
// counted and ignored. After a SYN-ACK the check sends the backend an RST
// (same path, same DSCP) to end the half-open connection at once; the
// kernel's own RST goes to the VIP, i.e. to whichever backend the balancers
// pick for it, so it cannot be relied on.
import { randomInt } from 'node:crypto';
import dgram from 'node:dgram';
import type { Family } from '../core/types.js';
import { openRawSocket, type RawSocket } from './raw-socket.js';
import { TCP_FLAGS, TCP_PROTOCOL, buildTcp, readTcp } from './tcp-segment.js';

/**
 * Local ports of checks: above Linux's ephemeral range (32768-60999), so no
 * connect() of this host picks one and takes our answers.
 */
export const PROBE_PORTS = { from: 61000, to: 65535 } as const;

export interface ProbeTarget {
  family: Family;
  /** The backend (RIP) the SYN is sent to. */
  backend: string;
  /** The VIP the answer must come from. */
  vip: string;
  port: number;
  /** The VIP's DSCP: the real server finds the VIP by it. */
  dscp: number;
}

export type ProbeResult =
  /** A SYN-ACK from VIP:PORT acknowledging the SYN. */
  | { result: 'up'; latencyMs: number }
  /** An RST from VIP:PORT acknowledging the SYN: nothing listens there. */
  | { result: 'refused'; latencyMs: number }
  /** Nothing that counts within the timeout. */
  | { result: 'timeout' }
  /** The check could not be sent (no route, no raw socket…). */
  | { result: 'error'; message: string };

export interface ProberCounters {
  /** Segments sent: SYNs (retransmissions included) and RSTs. */
  syns: number;
  rsts: number;
  /** TCP segments read that answered no check in progress (strays, spoofed, stale, duplicates). */
  ignored: number;
}

interface Pending {
  target: ProbeTarget;
  /** The SYN's source address and port. */
  source: string;
  port: number;
  isn: number;
  started: bigint;
  finish: (r: ProbeResult) => void;
}

export interface TcpProberOptions {
  /** Opens the raw socket of a family (tests inject one). */
  openSocket?: (family: Family, onPacket: (packet: Buffer, source: string) => void) => RawSocket;
  /** The local address the kernel would send from to reach `backend`. */
  sourceFor?: (family: Family, backend: string, port: number) => Promise<string>;
}

/** Sends checks and matches their answers; one raw socket per family, opened on first use. */
export class TcpProber {
  readonly counters: ProberCounters = { syns: 0, rsts: 0, ignored: 0 };
  readonly #sockets = new Map<Family, RawSocket>();
  readonly #pending = new Map<string, Pending>();
  readonly #open: NonNullable<TcpProberOptions['openSocket']>;
  readonly #sourceFor: NonNullable<TcpProberOptions['sourceFor']>;
  #closed = false;

  constructor(options: TcpProberOptions = {}) {
    this.#open = options.openSocket ?? ((family, onPacket) => openRawSocket(family, TCP_PROTOCOL, onPacket));
    this.#sourceFor = options.sourceFor ?? routeSource;
  }

  /**
   * One check: the SYN, sent again at half the timeout if nothing came (a
   * single lost packet does not fail it), then the answer or the timeout.
   * Never rejects.
   */
  async probe(target: ProbeTarget, timeoutMs: number): Promise<ProbeResult> {
    if (this.#closed) return { result: 'error', message: 'the prober is closed' };
    let socket: RawSocket;
    let source: string;
    try {
      socket = this.#socket(target.family);
      source = await this.#sourceFor(target.family, target.backend, target.port);
    } catch (err) {
      return { result: 'error', message: (err as Error).message };
    }
    const port = this.#freePort(target);
    if (port === undefined) return { result: 'error', message: 'no free local port for a check' };
    const isn = randomInt(0, 2 ** 32);
    const key = answerKey(target.family, target.vip, target.port, port);
    const syn = buildTcp(target.family, source, target.backend, { srcPort: port, dstPort: target.port, seq: isn, ack: 0, flags: TCP_FLAGS.syn });
    return new Promise<ProbeResult>((resolve) => {
      const timers: NodeJS.Timeout[] = [];
      const finish = (r: ProbeResult) => {
        if (this.#pending.get(key)?.finish !== finish) return;
        this.#pending.delete(key);
        for (const t of timers) clearTimeout(t);
        resolve(r);
      };
      this.#pending.set(key, { target, source, port, isn, started: process.hrtime.bigint(), finish });
      const send = () => {
        try {
          this.#send(socket, target, syn);
          this.counters.syns++;
        } catch (err) {
          finish({ result: 'error', message: (err as Error).message });
        }
      };
      timers.push(setTimeout(send, timeoutMs / 2), setTimeout(() => finish({ result: 'timeout' }), timeoutMs));
      send();
    });
  }

  /** Ends every check in progress (as errors) and closes the sockets. */
  close(): void {
    this.#closed = true;
    for (const p of [...this.#pending.values()]) p.finish({ result: 'error', message: 'the prober is closed' });
    for (const s of this.#sockets.values()) s.close();
    this.#sockets.clear();
  }

  #socket(family: Family): RawSocket {
    let s = this.#sockets.get(family);
    if (s === undefined) {
      try {
        s = this.#open(family, (packet, source) => this.#answer(family, packet, source));
      } catch (err) {
        const e = err as NodeJS.ErrnoException;
        if (e.code !== 'EPERM') throw err;
        throw new Error(`health checks send their SYNs from a raw socket, which needs CAP_NET_RAW: ${e.message}`);
      }
      this.#sockets.set(family, s);
    }
    return s;
  }

  #send(socket: RawSocket, target: ProbeTarget, segment: Buffer): void {
    // One socket serves every VIP of a family: the DSCP is set for each send.
    socket.setTrafficClass(target.dscp << 2);
    socket.send(segment, target.backend);
  }

  #freePort(target: ProbeTarget): number | undefined {
    for (let tries = 0; tries < 32; tries++) {
      const port = randomInt(PROBE_PORTS.from, PROBE_PORTS.to + 1);
      if (!this.#pending.has(answerKey(target.family, target.vip, target.port, port))) return port;
    }
    return undefined;
  }

  #answer(family: Family, packet: Buffer, source: string): void {
    const read = readTcp(family, packet, source);
    if (read === undefined) return;
    const { tcp } = read;
    const pending = this.#pending.get(answerKey(family, read.source, tcp.srcPort, tcp.dstPort));
    const acknowledges = pending !== undefined && (tcp.flags & TCP_FLAGS.ack) !== 0 && tcp.ack === ((pending.isn + 1) >>> 0);
    const synAck = (tcp.flags & (TCP_FLAGS.syn | TCP_FLAGS.rst)) === TCP_FLAGS.syn;
    const reset = (tcp.flags & TCP_FLAGS.rst) !== 0;
    if (!acknowledges || (!synAck && !reset)) {
      this.counters.ignored++;
      return;
    }
    const latencyMs = Number(process.hrtime.bigint() - pending.started) / 1e6;
    if (reset) {
      pending.finish({ result: 'refused', latencyMs });
      return;
    }
    pending.finish({ result: 'up', latencyMs });
    this.#reset(pending);
  }

  /** Ends the half-open connection on the backend: RST, sequence number ISN + 1, by the SYN's path. */
  #reset({ target, source, port, isn }: Pending): void {
    const socket = this.#sockets.get(target.family);
    if (socket === undefined) return;
    try {
      this.#send(socket, target, buildTcp(target.family, source, target.backend, {
        srcPort: port, dstPort: target.port, seq: (isn + 1) >>> 0, ack: 0, flags: TCP_FLAGS.rst,
      }));
      this.counters.rsts++;
    } catch {
      // Then the server retransmits its SYN-ACK a few times and gives up: nothing is lost.
    }
  }
}

const answerKey = (family: Family, vip: string, port: number, localPort: number): string => `${family}|${vip}|${port}|${localPort}`;

/** The kernel's source address towards `backend`: a UDP socket connected there, never sent on. */
export function routeSource(family: Family, backend: string, port: number): Promise<string> {
  const socket = dgram.createSocket(family === 4 ? 'udp4' : 'udp6');
  return new Promise<string>((resolve, reject) => {
    socket.once('error', reject);
    socket.connect(port, backend, () => resolve(socket.address().address));
  }).finally(() => socket.close());
}
