// Real traffic through the lab: a small HTTP + UDP echo service for srv and a
// client probe for cli, each a Node child process inside its namespace. The
// service answers with the address a request reached, so a probe can tell a
// reply from the VIP from anything else.
import { once } from 'node:events';
import ipaddr from 'ipaddr.js';
import type { ChildProcess } from 'node:child_process';
import type { NamespaceLab } from './namespaces.js';

export const ECHO_PORT = 8080;

/** What the service reports about the request it answered. */
export interface EchoReply {
  /** The address the request was delivered to (the VIP when the rewrite worked). */
  local: string;
  /** The request's source. */
  remote: string;
}

export interface ProbeTarget {
  protocol: 'http' | 'udp';
  address: string;
  port?: number;
}

export interface ProbeResult {
  target: ProbeTarget;
  ok: boolean;
  /** Set when ok. */
  reply?: EchoReply;
  /** The peer the answer came from (the connected address: only replies from it are accepted). */
  from?: string;
  /** Why not, when !ok (`timeout`, `ECONNREFUSED`…). */
  error?: string;
}

export interface EchoService {
  child: ChildProcess;
  stop(): Promise<void>;
}

// Binds each address given (not the wildcard): the service must only be
// reachable on the VIPs, as in docs/lab.md.
const ECHO_SERVICE_SOURCE = `
const http = require('node:http'), dgram = require('node:dgram'), net = require('node:net');
const { addresses, port } = JSON.parse(process.argv[1]);
let pending = addresses.length * 2;
const ready = () => { if (--pending === 0) process.stdout.write('ready\\n'); };
const fail = (what) => (err) => { process.stderr.write(what + ': ' + err.message + '\\n'); process.exit(1); };
for (const address of addresses) {
  http.createServer((req, res) => {
    res.setHeader('connection', 'close');
    res.end(JSON.stringify({ local: req.socket.localAddress, remote: req.socket.remoteAddress }));
  }).on('error', fail('http ' + address)).listen(port, address, ready);
  const udp = dgram.createSocket(net.isIPv6(address) ? 'udp6' : 'udp4');
  udp.on('error', fail('udp ' + address));
  udp.on('message', (msg, rinfo) => udp.send(JSON.stringify({ local: address, remote: rinfo.address }), rinfo.port, rinfo.address));
  udp.bind(port, address, ready);
}
`;

const PROBE_SOURCE = `
const http = require('node:http'), dgram = require('node:dgram'), net = require('node:net');
const { targets, timeoutMs } = JSON.parse(process.argv[1]);
function httpProbe(t) {
  return new Promise((resolve) => {
    const req = http.get({ hostname: t.address, port: t.port, path: '/', signal: AbortSignal.timeout(timeoutMs) }, (res) => {
      const from = res.socket.remoteAddress;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => resolve({ target: t, ok: true, reply: JSON.parse(body), from }));
      res.on('error', (e) => resolve({ target: t, ok: false, error: e.code || e.message }));
    });
    req.on('error', (e) => resolve({ target: t, ok: false, error: e.name === 'AbortError' ? 'timeout' : (e.code || e.message) }));
  });
}
function udpProbe(t) {
  return new Promise((resolve) => {
    const s = dgram.createSocket(net.isIPv6(t.address) ? 'udp6' : 'udp4');
    const done = (r) => { clearTimeout(timer); s.close(); resolve(r); };
    const timer = setTimeout(() => done({ target: t, ok: false, error: 'timeout' }), timeoutMs);
    s.on('error', (e) => done({ target: t, ok: false, error: e.code || e.message }));
    // connect(): the kernel then delivers only datagrams from the VIP itself.
    s.on('message', (msg, rinfo) => done({ target: t, ok: true, reply: JSON.parse(msg.toString()), from: rinfo.address }));
    s.connect(t.port, t.address, () => s.send('probe'));
  });
}
Promise.all(targets.map((t) => (t.protocol === 'http' ? httpProbe(t) : udpProbe(t))))
  .then((results) => process.stdout.write(JSON.stringify(results)));
`;

/** Starts the echo service in `role` (default srv) on the given addresses; resolves once it listens. */
export async function startEchoService(
  lab: NamespaceLab<string>, addresses: readonly string[], options: { role?: string; port?: number } = {},
): Promise<EchoService> {
  const config = JSON.stringify({ addresses, port: options.port ?? ECHO_PORT });
  const child = lab.spawn(options.role ?? 'srv', process.execPath, ['-e', ECHO_SERVICE_SOURCE, config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr!.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
  const ready = new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => { if (chunk.toString().includes('ready')) resolve(); });
    child.once('exit', (status) => reject(new Error(`echo service exited (status ${status}) before listening: ${stderr.trim()}`)));
  });
  await ready;
  return {
    child,
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      await once(child, 'exit');
    },
  };
}

/** Sends one request per target from `role` (default cli), all at once; never rejects for a failed request. */
export async function probe(
  lab: NamespaceLab<string>, targets: readonly ProbeTarget[], options: { role?: string; timeoutMs?: number } = {},
): Promise<ProbeResult[]> {
  const withPorts = targets.map((t) => ({ ...t, port: t.port ?? ECHO_PORT }));
  const config = JSON.stringify({ targets: withPorts, timeoutMs: options.timeoutMs ?? 3000 });
  const out = await lab.exec(options.role ?? 'cli', process.execPath, ['-e', PROBE_SOURCE, config]);
  return JSON.parse(out) as ProbeResult[];
}

/** Compares two address texts by value (`2001:db8::1` equals `2001:0db8:0:0::1`). */
export const sameAddress = (a: string, b: string): boolean =>
  ipaddr.isValid(a) && ipaddr.isValid(b) && ipaddr.parse(a).toNormalizedString() === ipaddr.parse(b).toNormalizedString();
