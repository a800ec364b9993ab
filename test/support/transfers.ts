// Long TCP transfers through the lab that check their own data. The service
// on each server greets a connection with the server's name, echoes every
// byte, and when the client has sent all it will (half-close) answers with
// the count and SHA-256 of what it received. The client in cli keeps its
// connections sending random bytes at a steady pace, compares every echoed
// byte with what it sent, and at the end compares the server's count and
// digest with its own: a byte lost, changed or delivered to another server
// shows, in either direction.
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import type { NamespaceLab } from '../../tools/lab/index.js';

export const TRANSFER_PORT = 9091;

const SERVICE = `
const net = require('node:net'), crypto = require('node:crypto');
const { addresses, port, name } = JSON.parse(process.argv[1]);
let pending = addresses.length;
for (const address of addresses) {
  net.createServer((s) => {
    const hash = crypto.createHash('sha256');
    let bytes = 0;
    s.on('error', () => {});
    s.write(name + '\\n');
    s.on('data', (d) => {
      hash.update(d); bytes += d.length;
      if (!s.write(d)) { s.pause(); s.once('drain', () => s.resume()); }
    });
    s.on('end', () => s.end(JSON.stringify({ name, bytes, sha256: hash.digest('hex') }) + '\\n'));
  }).on('error', (e) => { process.stderr.write(address + ': ' + e.message + '\\n'); process.exit(1); })
    .listen(port, address, () => { if (--pending === 0) process.stdout.write('ready\\n'); });
}
`;

// Each connection: 'greeting' (until the server's name), 'echo' (every byte
// compared with the oldest one sent and not yet echoed), 'trailer' (once
// everything sent was echoed after the half-close). Sending waits while
// \`window\` bytes are unechoed, so a stalled connection stops, not buffers.
const CLIENT = `
const net = require('node:net'), crypto = require('node:crypto'), readline = require('node:readline');
const { targets, port, count, chunk, periodMs, window, concurrency, timeoutMs } = JSON.parse(process.argv[1]);
const conns = [];
for (const address of targets) for (let i = 0; i < count; i++) conns.push({
  address, localPort: 0, server: '', sent: 0, verified: 0, error: null, phase: 'greeting', finishing: false,
  unechoed: [], hash: crypto.createHash('sha256'), text: '', trailer: null, done: null,
});
const out = (kind, extra) => process.stdout.write(JSON.stringify({ kind, ...extra }) + '\\n');
const view = (c) => ({ address: c.address, localPort: c.localPort, server: c.server, sent: c.sent, verified: c.verified, error: c.error, trailer: c.trailer, sha256: c.sha256 });
const fail = (c, why) => { if (c.error) return; c.error = why; c.s.destroy(); if (c.done) c.done(); };
function consume(c, d) {
  let at = 0;
  while (at < d.length && !c.error) {
    if (c.phase === 'greeting' || c.phase === 'trailer') {
      const nl = d.indexOf(10, at);
      c.text += d.toString('utf8', at, nl < 0 ? d.length : nl);
      if (nl < 0) return;
      at = nl + 1;
      if (c.phase === 'greeting') { c.server = c.text; c.text = ''; c.phase = 'echo'; c.greeted(); }
      else { c.trailer = JSON.parse(c.text); if (c.done) c.done(); }
      continue;
    }
    if (c.unechoed.length === 0) {
      if (c.finishing) { c.phase = 'trailer'; continue; }
      return fail(c, 'more bytes echoed than sent, at byte ' + c.verified);
    }
    const head = c.unechoed[0];
    const n = Math.min(head.length, d.length - at);
    if (!head.subarray(0, n).equals(d.subarray(at, at + n))) return fail(c, 'echoed bytes differ from those sent, at byte ' + c.verified);
    c.verified += n; at += n;
    if (n === head.length) c.unechoed.shift(); else c.unechoed[0] = head.subarray(n);
    if (c.finishing && c.unechoed.length === 0) c.phase = 'trailer';
  }
}
function open(c) {
  return new Promise((resolve) => {
    const timer = setTimeout(() => fail(c, 'no greeting within ' + timeoutMs + ' ms'), timeoutMs);
    c.greeted = () => { clearTimeout(timer); resolve(); };
    c.s = net.connect({ host: c.address, port }, () => { c.localPort = c.s.localPort; });
    c.s.on('data', (d) => consume(c, d));
    c.s.on('error', (e) => fail(c, e.code || e.message));
    c.s.on('close', () => { if (!c.trailer) fail(c, 'closed'); });
    c.done = () => { clearTimeout(timer); resolve(); };
  });
}
(async () => {
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(concurrency, conns.length) }, async () => {
    while (next < conns.length) await open(conns[next++]);
  }));
  for (const c of conns) c.done = null;
  out('ready', { conns: conns.map(view) });
  if (chunk > 0) setInterval(() => {
    for (const c of conns) {
      if (c.error || c.finishing || c.phase !== 'echo' || c.sent - c.verified + chunk > window) continue;
      const b = crypto.randomBytes(chunk);
      c.unechoed.push(b); c.hash.update(b); c.sent += chunk;
      c.s.write(b);
    }
  }, periodMs);
})();
function finish(c) {
  return new Promise((resolve) => {
    if (c.error) return resolve();
    const timer = setTimeout(() => fail(c, 'no trailer within ' + timeoutMs + ' ms'), timeoutMs);
    c.done = () => { clearTimeout(timer); resolve(); };
    c.finishing = true;
    c.sha256 = c.hash.digest('hex');
    if (c.unechoed.length === 0) c.phase = 'trailer';
    c.s.end();
  });
}
readline.createInterface({ input: process.stdin }).on('line', async (line) => {
  if (line === 'status') out('status', { conns: conns.map(view) });
  if (line === 'finish') { await Promise.all(conns.map(finish)); out('finish', { conns: conns.map(view) }); }
});
`;

/** Starts the transfer service in `role` on `addresses`, greeting with `name`; resolves once it listens. Stopped with the lab. */
export async function startTransferService(lab: NamespaceLab<string>, role: string, addresses: readonly string[], name: string): Promise<TransferService> {
  const child = lab.spawn(role, process.execPath, ['-e', SERVICE, JSON.stringify({ addresses, port: TRANSFER_PORT, name })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => { if (c.toString().includes('ready')) resolve(); });
    child.once('exit', (status) => reject(new Error(`transfer service in ${role} exited (${status}): ${stderr.trim()}`)));
  });
  return new TransferService(child);
}

export class TransferService {
  constructor(readonly child: ChildProcess) {}

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    await once(this.child, 'exit');
  }
}

/** One connection as the client sees it. */
export interface Transfer {
  address: string;
  localPort: number;
  /** The server's name from its greeting ('' before it came). */
  server: string;
  /** Bytes sent, and of them echoed back identical. */
  sent: number;
  verified: number;
  /** Why it failed (`ECONNRESET`, `echoed bytes differ…`), or null. */
  error: string | null;
  /** After finish(): the server's own account, and the digest of what was sent. */
  trailer: { name: string; bytes: number; sha256: string } | null;
  sha256?: string;
}

export interface TransferOptions {
  /** Bytes per write; 0: connections that only take their greeting. Default 0. */
  chunk?: number;
  /** Between writes of each connection. Default 20 ms. */
  periodMs?: number;
  /** Unechoed bytes at most per connection. Default 64 KiB. */
  window?: number;
  /** Connections opening at once. Default 32. */
  concurrency?: number;
  /** Bounds a greeting's and a trailer's wait (a hang, not a measurement). Default 30 s. */
  timeoutMs?: number;
}

/** `count` transfers to each target from `role`, kept open until finish() or stop(). */
export class Transfers {
  readonly #child: ChildProcess;
  #partial = '';
  #lines: Array<{ kind: string; conns: Transfer[] }> = [];
  #waiters: (() => void)[] = [];
  #stderr = '';

  constructor(lab: NamespaceLab<string>, role: string, targets: readonly string[], count: number, options: TransferOptions = {}) {
    const config = {
      targets, port: TRANSFER_PORT, count, chunk: options.chunk ?? 0, periodMs: options.periodMs ?? 20,
      window: options.window ?? 65536, concurrency: options.concurrency ?? 32, timeoutMs: options.timeoutMs ?? 30_000,
    };
    this.#child = lab.spawn(role, process.execPath, ['-e', CLIENT, JSON.stringify(config)], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.#child.stderr!.on('data', (c: Buffer) => { this.#stderr += c.toString(); });
    this.#child.stdout!.on('data', (c: Buffer) => {
      const lines = (this.#partial + c.toString()).split('\n');
      this.#partial = lines.pop()!;
      for (const l of lines) this.#lines.push(JSON.parse(l) as { kind: string; conns: Transfer[] });
      for (const w of this.#waiters.splice(0)) w();
    });
    this.#child.on('exit', () => { for (const w of this.#waiters.splice(0)) w(); });
  }

  async #next(kind: string, from: number): Promise<Transfer[]> {
    for (;;) {
      const found = this.#lines.slice(from).find((l) => l.kind === kind);
      if (found) return found.conns;
      if (this.#child.exitCode !== null || this.#child.signalCode !== null) throw new Error(`the transfer client exited: ${this.#stderr}`);
      await new Promise<void>((resolve) => { this.#waiters.push(resolve); });
    }
  }

  /** Once every connection has its greeting (or failed): their state. */
  ready(): Promise<Transfer[]> {
    return this.#next('ready', 0);
  }

  status(): Promise<Transfer[]> {
    const n = this.#lines.length;
    this.#child.stdin!.write('status\n');
    return this.#next('status', n);
  }

  /** Stops sending, waits for every echo, half-closes and waits for each server's account. */
  finish(): Promise<Transfer[]> {
    const n = this.#lines.length;
    this.#child.stdin!.write('finish\n');
    return this.#next('finish', n);
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    await once(this.#child, 'exit');
  }
}
