// A fourth namespace behind the lab's real server, where a wrong NEEDS_CSUM
// seed shows. srv does not deliver the VIPs itself: it forwards them to
// `fwd` over a veth whose transmit checksum offload is off, so the kernel
// cuts every GSO super-packet the rewriter wrote into segments in software
// and computes each segment's checksum from the seed the rewriter left in
// the packet. A wrong seed becomes a wrong checksum on the wire, which a
// capture on fwd's side and fwd's own TCP both see.
//
//   cli ── lb ── s-lb [srv: TUN + daemon] s-fwd ──── f-srv [fwd: VIPs on lo, receiver]
//   cli ── veth-c ─── veth-s [srv]                     (answers: fwd → srv → cli)
import type { ChildProcess, SpawnOptions } from 'node:child_process';
import { createInterface } from 'node:readline';
import type { Lab, LabVip } from '../../tools/lab/index.js';
import {
  addNamespace, deleteNamespace, execInNamespace, ip, spawnInNamespace, writeSysctl, type Where,
} from '../../src/system/index.js';
import { disableTxChecksumOffload, type OffloadState } from './ethtool.js';
import { PYTHON } from './python.js';

export const FORWARD_INTERFACES = {
  /** srv's side of the srv — fwd link: where super-packets leave, segmented in software. */
  srvToFwd: 's-fwd',
  /** fwd's side: where the capture runs. */
  fwdToSrv: 'f-srv',
} as const;

/** The srv — fwd link (documentation prefixes, clear of the lab's own). */
export const FORWARD_PLAN = {
  4: { srv: '203.0.113.193', fwd: '203.0.113.194', length: 26 },
  6: { srv: '2001:db8:204::1', fwd: '2001:db8:204::2', length: 64 },
} as const;

export class ForwardTarget {
  readonly ns: string;
  /** What the kernel reports for s-fwd after its transmit checksum offload was turned off. */
  srvLinkOffloads: OffloadState = { txChecksum: true, tso: true };
  #children = new Set<ChildProcess>();

  private constructor(readonly lab: Lab) {
    this.ns = `${lab.name}-fwd`;
  }

  /**
   * Adds the fwd namespace to `lab` with `vips` on its lo, and makes srv
   * forward those VIPs to it instead of delivering them. srv must not have
   * the VIPs itself (run the daemon without --loopback-vips).
   */
  static async create(lab: Lab, vips: readonly LabVip[]): Promise<ForwardTarget> {
    const t = new ForwardTarget(lab);
    try {
      await t.#build(vips);
    } catch (err) {
      await t.destroy().catch(() => {});
      throw err;
    }
    return t;
  }

  get where(): Where {
    return { netns: this.ns };
  }

  exec(file: string, args: readonly string[]): Promise<string> {
    return execInNamespace(this.ns, file, args);
  }

  /** A long-running program in fwd; destroy() stops it. */
  spawn(file: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawnInNamespace(this.ns, file, args, options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    return child;
  }

  /**
   * Packets fwd's stack refused for a bad checksum: TCP (IPv4 and IPv6
   * share the counter), UDP over IPv4 and UDP over IPv6.
   */
  async checksumErrors(): Promise<{ tcp: number; udp4: number; udp6: number }> {
    const snmp = await this.exec('cat', ['/proc/net/snmp']);
    const row = (prefix: string) => {
      const [names, values] = snmp.split('\n').filter((l) => l.startsWith(`${prefix}:`)).map((l) => l.split(/\s+/));
      const i = names?.indexOf('InCsumErrors') ?? -1;
      if (i < 0) throw new Error(`no ${prefix} InCsumErrors in /proc/net/snmp`);
      return Number(values![i]);
    };
    const udp6 = /^Udp6InCsumErrors\s+(\d+)$/m.exec(await this.exec('cat', ['/proc/net/snmp6']));
    if (!udp6) throw new Error('no Udp6InCsumErrors in /proc/net/snmp6');
    return { tcp: row('Tcp'), udp4: row('Udp'), udp6: Number(udp6[1]) };
  }

  async destroy(): Promise<void> {
    for (const child of this.#children) child.kill('SIGKILL');
    // Deleting the namespace deletes f-srv and with it its peer s-fwd in srv.
    await deleteNamespace(this.ns);
  }

  async #build(vips: readonly LabVip[]): Promise<void> {
    const srv = this.lab.where('srv');
    const fwd = this.where;
    const i = FORWARD_INTERFACES;
    await addNamespace(this.ns);
    await writeSysctl('net.ipv6.conf.default.accept_dad', '0', fwd);
    await writeSysctl('net.ipv4.conf.all.rp_filter', '0', fwd);
    await writeSysctl('net.ipv4.conf.default.rp_filter', '0', fwd);
    await ip(['link', 'set', 'dev', 'lo', 'up'], fwd);
    await ip(['link', 'add', 'name', i.srvToFwd, 'type', 'veth', 'peer', 'name', i.fwdToSrv, 'netns', this.ns], srv);
    for (const family of [4, 6] as const) {
      const p = FORWARD_PLAN[family];
      const nodad = family === 6 ? ['nodad'] : [];
      await ip([`-${family}`, 'addr', 'add', `${p.srv}/${p.length}`, 'dev', i.srvToFwd, ...nodad], srv);
      await ip([`-${family}`, 'addr', 'add', `${p.fwd}/${p.length}`, 'dev', i.fwdToSrv, ...nodad], fwd);
    }
    this.srvLinkOffloads = await disableTxChecksumOffload(i.srvToFwd, srv);
    await ip(['link', 'set', 'dev', i.srvToFwd, 'up'], srv);
    await ip(['link', 'set', 'dev', i.fwdToSrv, 'up'], fwd);
    for (const family of [4, 6] as const) {
      await ip([`-${family}`, 'route', 'add', 'default', 'via', FORWARD_PLAN[family].srv, 'dev', i.fwdToSrv], fwd);
    }
    for (const vip of vips) {
      const length = vip.family === 4 ? 32 : 128;
      await ip([`-${vip.family}`, 'addr', 'add', `${vip.address}/${length}`, 'dev', 'lo', ...(vip.family === 6 ? ['nodad'] : [])], fwd);
      await ip([`-${vip.family}`, 'route', 'add', `${vip.address}/${length}`, 'via', FORWARD_PLAN[vip.family].fwd, 'dev', i.srvToFwd], srv);
    }
    await writeSysctl(`net/ipv4/conf/${i.srvToFwd}/rp_filter`, '0', srv);
    await writeSysctl('net.ipv4.ip_forward', '1', srv);
    await writeSysctl('net.ipv6.conf.all.forwarding', '1', srv);
    // Forwarded packets leave srv on the link they did not come in on; no redirects either way.
    await writeSysctl('net.ipv4.conf.all.send_redirects', '0', srv);
  }
}

// A receiver that hashes each connection's bytes and answers with
// {bytes, sha256}, and a client that sends random bytes and compares.
const RECEIVER_SOURCE = `
const net = require('node:net'), crypto = require('node:crypto');
const { addresses, port } = JSON.parse(process.argv[1]);
let pending = addresses.length;
for (const address of addresses) {
  net.createServer((sock) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    sock.on('error', () => {});
    sock.on('data', (d) => { bytes += d.length; hash.update(d); });
    sock.on('end', () => sock.end(JSON.stringify({ bytes, sha256: hash.digest('hex') }) + '\\n'));
  }).on('error', (e) => { process.stderr.write(address + ': ' + e.message + '\\n'); process.exit(1); })
    .listen(port, address, () => { if (--pending === 0) process.stdout.write('ready\\n'); });
}
`;

const SENDER_SOURCE = `
const net = require('node:net'), crypto = require('node:crypto');
const { address, port, bytes, timeoutMs } = JSON.parse(process.argv[1]);
const CHUNK = 256 * 1024;
const hash = crypto.createHash('sha256');
let answer = '';
const done = (r) => { process.stdout.write(JSON.stringify(r) + '\\n'); process.exit(0); };
setTimeout(() => done({ error: 'timeout after ' + timeoutMs + ' ms' }), timeoutMs).unref();
const sock = net.connect({ host: address, port }, async () => {
  for (let left = bytes; left > 0; left -= CHUNK) {
    const part = crypto.randomBytes(Math.min(CHUNK, left));
    hash.update(part);
    if (!sock.write(part)) await new Promise((r) => sock.once('drain', r));
  }
  sock.end();
});
sock.on('error', (e) => done({ error: e.code || e.message }));
sock.on('data', (d) => { answer += d; });
sock.on('end', () => {
  try { done({ sent: { bytes, sha256: hash.digest('hex') }, received: JSON.parse(answer) }); }
  catch { done({ error: 'no answer from the receiver: ' + JSON.stringify(answer.slice(0, 200)) }); }
});
`;

// UDP super-packets the way a QUIC server sends them: each send() of
// `segments` x `size` bytes with UDP_SEGMENT set leaves the socket as one
// GSO packet. A pause after each keeps the receiving side's backlog from
// overflowing once srv has cut them into datagrams. Node has no
// UDP_SEGMENT; Debian's Python does the setsockopt.
const UDP_GSO_SENDER_SOURCE = `
import socket, sys, time
address, port, sends, segments, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
UDP_SEGMENT = 103
s = socket.socket(socket.AF_INET6 if ':' in address else socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_UDP, UDP_SEGMENT, size)
s.connect((address, port))
data = bytes((i * 7) & 0xff for i in range(segments * size))
for _ in range(sends):
    s.send(data)
    time.sleep(0.005)
`;

export const UDP_GSO_PORT = 9300;

// Counts datagrams and bytes; answers each line on stdin with JSON. Python,
// for SO_RCVBUFFORCE: a buffer that holds a whole test burst whatever
// net.core.rmem_max says.
const UDP_SINK_SOURCE = `
import json, select, socket, sys
SO_RCVBUFFORCE = 33
port, addresses = int(sys.argv[1]), sys.argv[2:]
socks = []
for a in addresses:
    s = socket.socket(socket.AF_INET6 if ':' in a else socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, 32 << 20)
    s.bind((a, port))
    s.setblocking(False)
    socks.append(s)
seen = {'datagrams': 0, 'bytes': 0}
print('ready', flush=True)
while True:
    for r in select.select(socks + [sys.stdin], [], [])[0]:
        if r is sys.stdin:
            if not sys.stdin.readline():
                sys.exit(0)
            print(json.dumps(seen), flush=True)
            continue
        while True:
            try:
                d = r.recv(65535)
            except BlockingIOError:
                break
            seen['datagrams'] += 1
            seen['bytes'] += len(d)
`;

export interface UdpSink {
  /** Datagrams and bytes received so far. */
  count(): Promise<{ datagrams: number; bytes: number }>;
}

/** A UDP socket per address in fwd on UDP_GSO_PORT that counts what arrives. */
export async function startUdpSink(target: ForwardTarget, addresses: readonly string[]): Promise<UdpSink> {
  const child = target.spawn(PYTHON, ['-c', UDP_SINK_SOURCE, String(UDP_GSO_PORT), ...addresses], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  if ((await lines.next()).value !== 'ready') throw new Error(`UDP sink in ${target.ns} did not start: ${stderr.trim()}`);
  return {
    async count() {
      child.stdin!.write('count\n');
      const next = await lines.next();
      if (next.done) throw new Error(`UDP sink exited: ${stderr.trim()}`);
      return JSON.parse(next.value as string) as { datagrams: number; bytes: number };
    },
  };
}

/** Sends `sends` UDP super-packets of `segments` datagrams of `size` bytes from cli to address. */
export async function sendUdpSuperPackets(lab: Lab, address: string, sends: number, segments: number, size: number): Promise<void> {
  await lab.exec('cli', PYTHON, ['-c', UDP_GSO_SENDER_SOURCE, address, String(UDP_GSO_PORT), String(sends), String(segments), String(size)]);
}

export const RECEIVER_PORT = 9200;

export interface HashedTransfer {
  sent?: { bytes: number; sha256: string };
  received?: { bytes: number; sha256: string };
  error?: string;
}

/** Starts the hashing receiver in fwd on `addresses`; resolves once it listens. */
export async function startReceiver(target: ForwardTarget, addresses: readonly string[], port = RECEIVER_PORT): Promise<ChildProcess> {
  const child = target.spawn(process.execPath, ['-e', RECEIVER_SOURCE, JSON.stringify({ addresses, port })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== 'ready') throw new Error(`receiver in ${target.ns} did not start: ${stderr.trim()}`);
  return child;
}

/** Sends `bytes` random bytes from cli to address:port and returns both sides' hashes. */
export async function sendHashed(lab: Lab, address: string, bytes: number, port = RECEIVER_PORT, timeoutMs = 60_000): Promise<HashedTransfer> {
  const out = await lab.exec('cli', process.execPath, ['-e', SENDER_SOURCE, JSON.stringify({ address, port, bytes, timeoutMs })]);
  return JSON.parse(out) as HashedTransfer;
}
