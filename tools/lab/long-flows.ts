// Long-lived TCP connections through the lab, to see which server each one
// reaches and whether it still does later: a service on each server that
// answers every line with the server's name, and a client in cli that keeps
// its connections open and, asked, pings each one and reports the answers.
import { once } from 'node:events';
import type { ChildProcess } from 'node:child_process';
import type { NamespaceLab } from './namespaces.js';

export const NAMED_PORT = 9090;

const NAMED_SERVICE = `
const net = require('node:net');
const { addresses, port, name } = JSON.parse(process.argv[1]);
let pending = addresses.length;
for (const address of addresses) {
  net.createServer((s) => { s.setEncoding('utf8'); s.on('error', () => {}); s.on('data', () => s.write(name + '\\n')); })
    .on('error', (e) => { process.stderr.write(address + ': ' + e.message + '\\n'); process.exit(1); })
    .listen(port, address, () => { if (--pending === 0) process.stdout.write('ready\\n'); });
}
`;

const CLIENT = `
const net = require('node:net'), readline = require('node:readline');
const { targets, port, count, timeoutMs } = JSON.parse(process.argv[1]);
const conns = [];
for (const address of targets) for (let i = 0; i < count; i++) {
  const s = net.connect({ host: address, port });
  const c = { address, port: undefined, s, lines: [], waiter: null, error: null };
  s.setEncoding('utf8');
  s.on('connect', () => { c.port = s.localPort; });
  let partial = '';
  s.on('data', (d) => { const l = (partial + d).split('\\n'); partial = l.pop(); for (const x of l) { c.lines.push(x); if (c.waiter) c.waiter(); } });
  s.on('error', (e) => { c.error = e.code || e.message; if (c.waiter) c.waiter(); });
  s.on('close', () => { c.error = c.error || 'closed'; if (c.waiter) c.waiter(); });
  conns.push(c);
}
function ping(c) {
  return new Promise((resolve) => {
    if (c.error) return resolve('error:' + c.error);
    const n = c.lines.length;
    const timer = setTimeout(() => { c.waiter = null; resolve('error:timeout'); }, timeoutMs);
    c.waiter = () => {
      if (c.lines.length > n) { clearTimeout(timer); c.waiter = null; resolve(c.lines[n]); }
      else if (c.error) { clearTimeout(timer); c.waiter = null; resolve('error:' + c.error); }
    };
    c.s.write('ping\\n');
  });
}
readline.createInterface({ input: process.stdin }).on('line', async () => {
  const answers = await Promise.all(conns.map(ping));
  process.stdout.write(JSON.stringify(conns.map((c, i) => ({ address: c.address, port: c.port, answer: answers[i] }))) + '\\n');
});
`;

/** Starts the named service in `role` on `addresses`; resolves once it listens. Stopped with the lab. */
export async function startNamedService(lab: NamespaceLab<string>, role: string, addresses: readonly string[], name: string): Promise<ChildProcess> {
  const child = lab.spawn(role, process.execPath, ['-e', NAMED_SERVICE, JSON.stringify({ addresses, port: NAMED_PORT, name })], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => { stderr += c.toString(); });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (c: Buffer) => { if (c.toString().includes('ready')) resolve(); });
    child.once('exit', (status) => reject(new Error(`named service in ${role} exited (${status}): ${stderr.trim()}`)));
  });
  return child;
}

export interface FlowAnswer {
  address: string;
  /** The connection's own (client) port; none if it never connected. */
  port?: number;
  /** The server's name, or `error:WHY`. */
  answer: string;
}

/** How long a ping waits for each answer unless the caller says otherwise. */
const PING_TIMEOUT_MS = 3000;

/** `count` connections to each target from `role`, kept open until stop(). */
export class LongFlows {
  readonly #child: ChildProcess;
  #partial = '';
  #answers: FlowAnswer[][] = [];
  #waiters: (() => void)[] = [];

  /** `timeoutMs`: how long a ping waits for each answer before it reports `error:timeout`. */
  constructor(lab: NamespaceLab<string>, role: string, targets: readonly string[], count: number, timeoutMs = PING_TIMEOUT_MS) {
    this.#child = lab.spawn(role, process.execPath, ['-e', CLIENT, JSON.stringify({ targets, port: NAMED_PORT, count, timeoutMs })], { stdio: ['pipe', 'pipe', 'inherit'] });
    this.#child.stdout!.on('data', (c: Buffer) => {
      const lines = (this.#partial + c.toString()).split('\n');
      this.#partial = lines.pop()!;
      for (const l of lines) this.#answers.push(JSON.parse(l) as FlowAnswer[]);
      for (const w of this.#waiters.splice(0)) w();
    });
    this.#child.on('exit', () => { for (const w of this.#waiters.splice(0)) w(); });
  }

  /** Pings every connection once; the answers in connection order. */
  async ping(): Promise<FlowAnswer[]> {
    const n = this.#answers.length;
    this.#child.stdin!.write('ping\n');
    while (this.#answers.length <= n) {
      if (this.#child.exitCode !== null) throw new Error('the flow client exited');
      await new Promise<void>((resolve) => { this.#waiters.push(resolve); });
    }
    return this.#answers[n]!;
  }

  async stop(): Promise<void> {
    if (this.#child.exitCode !== null || this.#child.signalCode !== null) return;
    this.#child.kill('SIGTERM');
    await once(this.#child, 'exit');
  }
}
