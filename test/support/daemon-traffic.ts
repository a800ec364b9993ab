// Traffic for the daemon's lab tests and benchmarks: bulk TCP transfers
// checked by SHA-256 (a Node service in srv, a Node client in cli), and the
// compiled `labtool` (UDP flood, counting sink, echo servers, round trips).
import { execFileSync, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import type { Lab, LabRole } from '../../tools/lab/index.js';
import { LABTOOL_SOURCE } from './labtool-source.js';

export const BULK_PORT = 9100;
export const MIB = 1024 * 1024;

// Protocol: the client sends one JSON line {op, bytes, chunk, paceMs}.
// upload: the client then sends `bytes` random bytes and half-closes; the
// service answers {bytes, sha256} of what it received. download: the
// service sends `bytes` random bytes, then {bytes, sha256} of what it sent.
const BULK_SERVICE_SOURCE = `
const net = require('node:net'), crypto = require('node:crypto');
const { addresses, port } = JSON.parse(process.argv[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function send(sock, bytes, chunk, paceMs, hash) {
  for (let left = bytes; left > 0; left -= chunk) {
    const part = crypto.randomBytes(Math.min(chunk, left));
    hash.update(part);
    if (!sock.write(part)) await new Promise((r) => sock.once('drain', r));
    if (paceMs > 0) await sleep(paceMs);
  }
}
function serve(sock) {
  let header = null, buffered = Buffer.alloc(0), received = 0;
  const hash = crypto.createHash('sha256');
  sock.on('error', () => {});
  sock.on('data', (data) => {
    if (header === null) {
      buffered = Buffer.concat([buffered, data]);
      const nl = buffered.indexOf(10);
      if (nl < 0) return;
      header = JSON.parse(buffered.subarray(0, nl).toString());
      data = buffered.subarray(nl + 1);
      if (header.op === 'download') {
        send(sock, header.bytes, header.chunk, header.paceMs, hash)
          .then(() => sock.end(JSON.stringify({ bytes: header.bytes, sha256: hash.digest('hex') }) + '\\n'));
        return;
      }
    }
    received += data.length;
    hash.update(data);
  });
  sock.on('end', () => {
    if (header && header.op === 'upload') sock.end(JSON.stringify({ bytes: received, sha256: hash.digest('hex') }) + '\\n');
  });
}
let pending = addresses.length;
for (const address of addresses) {
  net.createServer(serve).on('error', (e) => { process.stderr.write(address + ': ' + e.message + '\\n'); process.exit(1); })
    .listen(port, address, () => { if (--pending === 0) process.stdout.write('ready\\n'); });
}
`;

const BULK_CLIENT_SOURCE = `
const net = require('node:net'), crypto = require('node:crypto');
const { address, port, op, bytes, chunk, paceMs, timeoutMs } = JSON.parse(process.argv[1]);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const started = Date.now();
const hash = crypto.createHash('sha256');
let got = 0, tail = Buffer.alloc(0);
const finish = (result) => { process.stdout.write(JSON.stringify({ ...result, ms: Date.now() - started }) + '\\n'); process.exit(0); };
const timer = setTimeout(() => finish({ error: 'timeout after ' + timeoutMs + ' ms, ' + got + ' bytes received' }), timeoutMs);
const sock = net.connect({ host: address, port }, async () => {
  sock.write(JSON.stringify({ op, bytes, chunk, paceMs }) + '\\n');
  if (op !== 'upload') return;
  for (let left = bytes; left > 0; left -= chunk) {
    const part = crypto.randomBytes(Math.min(chunk, left));
    hash.update(part);
    if (!sock.write(part)) await new Promise((r) => sock.once('drain', r));
    if (paceMs > 0) await sleep(paceMs);
  }
  sock.end();
});
sock.on('error', (e) => { clearTimeout(timer); finish({ error: e.code || e.message }); });
sock.on('data', (data) => {
  if (op === 'download' && got < bytes) {
    const take = Math.min(bytes - got, data.length);
    hash.update(data.subarray(0, take));
    got += take;
    data = data.subarray(take);
  }
  tail = Buffer.concat([tail, data]);
});
sock.on('end', () => {
  clearTimeout(timer);
  let peer;
  try { peer = JSON.parse(tail.toString()); } catch { return finish({ error: 'no summary from the service: ' + JSON.stringify(tail.toString().slice(0, 200)) }); }
  const mine = { bytes: op === 'upload' ? bytes : got, sha256: hash.digest('hex') };
  finish(op === 'upload' ? { sent: mine, received: peer } : { sent: peer, received: mine });
});
`;

export interface BulkService {
  child: ChildProcess;
  stop(): Promise<void>;
}

export interface TransferSide {
  bytes: number;
  sha256: string;
}

export interface TransferResult {
  /** What the sending side sent (its count and hash). */
  sent?: TransferSide;
  /** What the receiving side got. */
  received?: TransferSide;
  error?: string;
  ms: number;
}

export interface TransferOptions {
  address: string;
  op: 'upload' | 'download';
  bytes: number;
  port?: number;
  /** Bytes per write (default 64 KiB). */
  chunk?: number;
  /** Pause after each write, to stretch a transfer over time (default 0). */
  paceMs?: number;
  timeoutMs?: number;
}

/** Starts the bulk service in srv on the given addresses. */
export async function startBulkService(lab: Lab, addresses: readonly string[], port = BULK_PORT): Promise<BulkService> {
  const child = lab.spawn('srv', process.execPath, ['-e', BULK_SERVICE_SOURCE, JSON.stringify({ addresses, port })], { stdio: ['ignore', 'pipe', 'pipe'] });
  await readyLine(child, 'bulk service');
  return { child, stop: () => stopChild(child) };
}

/** A transfer running in cli; `result` resolves when it ends (never rejects). */
export function startTransfer(lab: Lab, options: TransferOptions): { child: ChildProcess; result: Promise<TransferResult> } {
  const config = {
    address: options.address, port: options.port ?? BULK_PORT, op: options.op, bytes: options.bytes,
    chunk: options.chunk ?? 64 * 1024, paceMs: options.paceMs ?? 0, timeoutMs: options.timeoutMs ?? 60_000,
  };
  const child = lab.spawn('cli', process.execPath, ['-e', BULK_CLIENT_SOURCE, JSON.stringify(config)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout!.on('data', (c: Buffer) => { out += c.toString(); });
  child.stderr!.on('data', (c: Buffer) => { err += c.toString(); });
  const result = new Promise<TransferResult>((resolve) => {
    child.once('close', (code) => {
      try {
        resolve(JSON.parse(out) as TransferResult);
      } catch {
        resolve({ error: `client exited (${code}) without a result: ${err.trim()}`, ms: 0 });
      }
    });
  });
  return { child, result };
}

export const transfer = (lab: Lab, options: TransferOptions): Promise<TransferResult> => startTransfer(lab, options).result;

// ---------------------------------------------------------------------------
// labtool: compiled once per source version into the temp directory.

let labtoolPath: string | undefined;

/** Path of the compiled labtool (gcc, on first use). */
export function labtool(): string {
  if (labtoolPath) return labtoolPath;
  const version = createHash('sha256').update(LABTOOL_SOURCE).digest('hex').slice(0, 12);
  const dir = join(tmpdir(), `l3dsr-labtool-${version}`);
  const bin = join(dir, 'labtool');
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'labtool.c'), LABTOOL_SOURCE);
    const partial = `${bin}.${process.pid}`;
    try {
      execFileSync('cc', ['-O2', '-Wall', '-o', partial, join(dir, 'labtool.c')], { stdio: ['ignore', 'ignore', 'pipe'] });
    } catch (err) {
      throw new Error(`cannot compile the lab traffic tool with cc (a C compiler is needed, as for the addon): ${(err as { stderr?: Buffer }).stderr?.toString() ?? err}`);
    }
    renameSync(partial, bin);
  }
  labtoolPath = bin;
  return bin;
}

export interface FloodOptions {
  address: string;
  port: number;
  /** UDP payload bytes (default 64). */
  size?: number;
  seconds: number;
  /** Packets per second; 0 = as fast as the sender can (default). */
  rate?: number;
  /** Distinct source ports (default 1). */
  flows?: number;
  role?: LabRole;
  /** The one CPU the sender may run on (default: any). */
  cpu?: number;
}

export interface FloodResult {
  sent: number;
  errors: number;
  seconds: number;
}

/** Runs a UDP flood from cli (by default) to completion. */
export async function flood(lab: Lab, o: FloodOptions): Promise<FloodResult> {
  const args = ['flood', o.address, String(o.port), String(o.size ?? 64), String(o.seconds), String(o.rate ?? 0), String(o.flows ?? 1)];
  const out = o.cpu === undefined
    ? await lab.exec(o.role ?? 'cli', labtool(), args)
    : await lab.exec(o.role ?? 'cli', 'taskset', ['-c', String(o.cpu), labtool(), ...args]);
  return JSON.parse(out) as FloodResult;
}

export interface Sink {
  child: ChildProcess;
  /** Datagrams received so far. */
  count(): Promise<number>;
  stop(): Promise<void>;
}

/** A UDP socket on address:port in srv (by default) that counts what it receives. */
export async function startSink(lab: Lab, address: string, port: number, role: LabRole = 'srv'): Promise<Sink> {
  const child = lab.spawn(role, labtool(), ['sink', address, String(port)], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const first = await lines.next();
  if (first.value !== 'ready') throw new Error(`sink on ${address}:${port} did not start`);
  return {
    child,
    async count() {
      child.stdin!.write('count\n');
      const next = await lines.next();
      if (next.done) throw new Error('sink exited');
      return Number(next.value);
    },
    stop: () => stopChild(child),
  };
}

/** Starts `labtool udp-echo|tcp-echo ADDRESS PORT` in srv. */
export async function startEcho(lab: Lab, kind: 'udp' | 'tcp', address: string, port: number): Promise<ChildProcess> {
  const child = lab.spawn('srv', labtool(), [`${kind}-echo`, address, String(port)], { stdio: ['ignore', 'pipe', 'pipe'] });
  await readyLine(child, `${kind} echo on ${address}`);
  return child;
}

export interface RoundTrips {
  /** Round-trip times in nanoseconds, in order. */
  ns: number[];
  lost: number;
}

/** `count` request/response round trips of `size` bytes from cli. */
export async function roundTrips(lab: Lab, kind: 'udp' | 'tcp', address: string, port: number, count: number, size = 64): Promise<RoundTrips> {
  return JSON.parse(await lab.exec('cli', labtool(), ['rtt', kind, address, String(port), String(count), String(size)])) as RoundTrips;
}

async function readyLine(child: ChildProcess, what: string): Promise<void> {
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => { if (c.toString().includes('ready')) resolve(); });
    child.once('close', (code) => reject(new Error(`${what} exited (${code}) before it was ready: ${stderr.trim()}`)));
  });
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    child.once('close', () => resolve());
    child.kill('SIGTERM');
  });
}
