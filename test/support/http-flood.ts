// Abusive HTTP clients for the daemon's endpoints, and what it costs the
// daemon: a flood of pipelined `GET PATH HTTP/1.1` requests written as fast
// as the socket takes them and never read, over TCP (from a namespace of the
// lab) or over the Unix control socket; one ordinary GET with a deadline;
// the daemon's memory from /proc.
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import type { Lab, LabRole } from '../../tools/lab/index.js';

export type HttpTarget = { host: string; port: number } | { path: string };
/** Where a client runs: a namespace of the lab; by default this host's (where the control socket is reachable too). */
export type ClientPlace = { lab: Lab; role: LabRole } | undefined;

/** Runs a small Node client with its JSON config; resolves with the JSON line it prints (never rejects). */
function runClient<T>(source: string, config: unknown, from: ClientPlace, what: string): { child: ChildProcess; result: Promise<T | { error: string }> } {
  const args = ['-e', source, JSON.stringify(config)];
  const child = from
    ? from.lab.spawn(from.role, process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const result = new Promise<T | { error: string }>((resolve) => {
    child.once('error', (e) => resolve({ error: `${what}: ${e.message}` }));
    child.once('close', (code) => {
      try {
        resolve(JSON.parse(out) as T);
      } catch {
        resolve({ error: `${what}: exited (${code}) without a result: ${err.trim()}` });
      }
    });
  });
  return { child, result };
}

// Each connection writes batches of pipelined requests until the socket
// stops taking them, and waits for 'drain'; it never reads (no 'data'
// listener), so the daemon's answers pile up on its side. A connection the
// daemon closes or resets is replaced until the time is up; then the
// client prints what it did as one JSON line.
const FLOOD_CLIENT_SOURCE = `
const net = require('node:net');
const { target, connections, seconds, path, batch } = JSON.parse(process.argv[1]);
const request = 'GET ' + path + ' HTTP/1.1\\r\\nHost: l3dsr\\r\\n\\r\\n';
const chunk = Buffer.from(request.repeat(batch));
const stats = { connections: 0, requests: 0, cut: 0 };
const open = new Set();
let stopping = false;
function connect() {
  if (stopping) return;
  const sock = net.connect(target);
  open.add(sock);
  stats.connections++;
  const pump = () => {
    while (!stopping && !sock.destroyed) {
      stats.requests += batch;
      if (!sock.write(chunk)) return;
    }
  };
  sock.on('connect', pump);
  sock.on('drain', pump);
  sock.on('error', () => {});
  sock.on('close', () => {
    open.delete(sock);
    if (stopping) return;
    stats.cut++;
    setImmediate(connect);
  });
}
for (let i = 0; i < connections; i++) connect();
setTimeout(() => {
  stopping = true;
  for (const s of open) s.destroy();
  process.stdout.write(JSON.stringify(stats) + '\\n');
  process.exit(0);
}, seconds * 1000);
`;

export interface FloodOptions {
  target: HttpTarget;
  /** Connections kept open at once. */
  connections: number;
  seconds: number;
  path?: string;
  /** Requests per write (default 256, about 10 KB). */
  batch?: number;
}

export interface HttpFloodResult {
  connections: number;
  /** Requests written (handed to the socket). */
  requests: number;
  /** Connections the daemon closed or reset while the flood ran. */
  cut: number;
}

export interface HttpFlood {
  child: ChildProcess;
  /** Resolves when the flood is over (never rejects). */
  result: Promise<HttpFloodResult | { error: string }>;
}

/** Starts a flood. */
export function startHttpFlood(options: FloodOptions, from?: ClientPlace): HttpFlood {
  return runClient<HttpFloodResult>(FLOOD_CLIENT_SOURCE, { path: '/metrics', batch: 256, ...options }, from, 'HTTP flood');
}

// One GET with its own deadline; prints {status, body} or {error} as JSON.
const GET_SOURCE = `
const http = require('node:http');
const { target, path, timeoutMs } = JSON.parse(process.argv[1]);
const req = http.get({ ...target, socketPath: target.path, path, timeout: timeoutMs, agent: false }, (res) => {
  let body = '';
  res.setEncoding('utf8');
  res.on('data', (c) => { body += c; });
  res.on('end', () => process.stdout.write(JSON.stringify({ status: res.statusCode, body })));
});
req.on('timeout', () => req.destroy(new Error('no answer within ' + timeoutMs + ' ms')));
req.on('error', (e) => process.stdout.write(JSON.stringify({ error: e.message })));
`;

export interface GetResult {
  status: number;
  body: string;
}

/** An ordinary GET on its own connection. */
export function httpGet(target: HttpTarget, path: string, timeoutMs: number, from?: ClientPlace): Promise<GetResult | { error: string }> {
  return runClient<GetResult>(GET_SOURCE, { target, path, timeoutMs }, from, `GET ${path}`).result;
}

// Connects, writes `send`, and keeps everything the daemon answers until it
// closes the connection or `timeoutMs` passes; prints {received, closed}.
const RAW_SOURCE = `
const net = require('node:net');
const { target, send, timeoutMs } = JSON.parse(process.argv[1]);
let received = '';
const finish = (closed) => { process.stdout.write(JSON.stringify({ received, closed })); process.exit(0); };
const sock = net.connect(target, () => sock.write(send));
sock.setEncoding('latin1');
sock.on('data', (c) => { received += c; });
sock.on('error', () => {});
sock.on('close', () => finish(true));
setTimeout(() => finish(false), timeoutMs);
`;

export interface RawExchange {
  /** Everything the daemon sent back. */
  received: string;
  /** Whether the daemon closed the connection within the time given. */
  closed: boolean;
}

/** Sends raw bytes on a fresh connection and keeps the answer. */
export function rawExchange(target: HttpTarget, send: string, timeoutMs: number, from?: ClientPlace): Promise<RawExchange | { error: string }> {
  return runClient<RawExchange>(RAW_SOURCE, { target, send, timeoutMs }, from, 'raw exchange').result;
}

export interface Memory {
  /** Resident set now, bytes. */
  rss: number;
  /** Peak resident set since the process started (VmHWM), bytes. */
  peak: number;
}

/** The memory of a process, from /proc/PID/status. */
export function memoryOf(pid: number): Memory {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const kib = (field: string) => {
    const m = new RegExp(`^${field}:\\s+(\\d+) kB$`, 'm').exec(status);
    if (!m) throw new Error(`/proc/${pid}/status has no ${field}:\n${status}`);
    return Number(m[1]) * 1024;
  };
  return { rss: kib('VmRSS'), peak: kib('VmHWM') };
}
