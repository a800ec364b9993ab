// The daemon's HTTP endpoints without a daemon: the shared page (one render
// for every request that may see it, one render at a time), and the
// servers' limits, each against a client that breaks it. The servers run
// in this process on a fake snapshot, with short timeouts so that a test
// waits for them in milliseconds; the lab test (e2e-http-abuse) floods the
// real daemon with the real limits.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type Server } from 'node:http';
import { connect, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HTTP_LIMITS, HTTP_REJECT_REASONS, HttpEndpoints, SharedPage, oneAtATime, type HttpEndpointName, type HttpLimits } from '../src/daemon/http-endpoints.js';
import type { DaemonSnapshot } from '../src/daemon/snapshot.js';
import { metric, waitFor } from './support/daemon.js';

/** A promise resolved from outside. */
function deferred<T>() {
  let resolve!: (v: T) => void;
  let reject!: (e: Error) => void;
  const promise = new Promise<T>((res, rej) => { resolve = res; reject = rej; });
  return { promise, resolve, reject };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('SharedPage', () => {
  it('requests within maxAge share one render, finished or not; a request after it gets a new one', async () => {
    let now = 0;
    const renders: ReturnType<typeof deferred<string>>[] = [];
    const page = new SharedPage(() => { const d = deferred<string>(); renders.push(d); return d.promise; }, 1000, oneAtATime(), () => now);
    const first = [page.get(), page.get()];
    await settle();
    now = 500;
    first.push(page.get());
    assert.equal(renders.length, 1);
    renders[0]!.resolve('one');
    assert.deepEqual(await Promise.all(first), ['one', 'one', 'one']);
    now = 999;
    assert.equal(await page.get(), 'one');
    assert.equal(renders.length, 1);
    now = 1000;
    const later = page.get();
    await settle();
    assert.equal(renders.length, 2);
    renders[1]!.resolve('two');
    assert.equal(await later, 'two');
  });

  it('maxAge 0: a request during a render waits for the next one, which begins after that render ends; all such requests share it', async () => {
    let now = 0;
    let running = 0;
    let most = 0;
    const renders: ReturnType<typeof deferred<string>>[] = [];
    const page = new SharedPage(() => {
      running++;
      most = Math.max(most, running);
      const d = deferred<string>();
      renders.push(d);
      return d.promise.finally(() => { running--; });
    }, 0, oneAtATime(), () => now);
    const a = page.get();
    await settle();
    now = 1;
    const b = page.get();
    const c = page.get();
    await settle();
    assert.equal(renders.length, 1, 'a request made during a render started another one at once');
    renders[0]!.resolve('before b and c');
    assert.equal(await a, 'before b and c');
    await settle();
    assert.equal(renders.length, 2);
    renders[1]!.resolve('after b and c');
    assert.deepEqual(await Promise.all([b, c]), ['after b and c', 'after b and c']);
    assert.equal(most, 1);
    // Never served from before the request, even right after a render.
    const d = page.get();
    await settle();
    assert.equal(renders.length, 3);
    renders[2]!.resolve('d');
    assert.equal(await d, 'd');
  });

  it('a failed render reaches every waiter and is not kept', async () => {
    let calls = 0;
    const page = new SharedPage(async () => { calls++; if (calls === 1) throw new Error('worker gone'); return 'fine'; }, 1000, oneAtATime(), () => 0);
    const results = await Promise.allSettled([page.get(), page.get()]);
    assert.deepEqual(results.map((r) => r.status), ['rejected', 'rejected']);
    assert.equal(await page.get(), 'fine');
    assert.equal(calls, 2);
  });

  it('two pages on one oneAtATime never render at the same time', async () => {
    const serialize = oneAtATime();
    const log: string[] = [];
    const status = deferred<string>();
    const statusPage = new SharedPage(() => { log.push('status begins'); return status.promise.finally(() => log.push('status ends')); }, 0, serialize);
    const metricsPage = new SharedPage(async () => { log.push('metrics begins'); return 'metrics'; }, 1000, serialize);
    const s = statusPage.get();
    const m = metricsPage.get();
    await settle();
    assert.deepEqual(log, ['status begins']);
    status.resolve('status');
    assert.deepEqual(await Promise.all([s, m]), ['status', 'metrics']);
    assert.deepEqual(log, ['status begins', 'status ends', 'metrics begins']);
  });
});

/** A snapshot that says which kind it is in the two places the pages show: the TUN name and the warnings. */
function fakeSnapshot(full: boolean, warnings: string[] = []): DaemonSnapshot {
  return {
    command: 'run', pid: process.pid, tun: full ? 'full0' : 'lean0', startedAt: 0, configPaths: [], rules: [], l2dsr: [], warnings, queues: [], reloads: { ok: 0, failed: 0 },
    kernelTxDropped: 0, steering: { mode: 'none', interfaces: [] }, loopbackVips: [],
  };
}

type Target = { port: number } | { path: string };

interface Served {
  target: Target;
  taken: { full: number; lean: number };
  get(path: string): Promise<{ status: number; body: string; headers: Record<string, unknown> }>;
  /** Writes `send` on a new connection; resolves with what came back once the server closed it (or after `ms`). */
  raw(send: string | string[], ms?: number): Promise<{ received: string; closed: boolean }>;
  /** What the server refused or cut for `reason`, from /status on the control socket (never older than the request). */
  rejected(reason: string): Promise<number>;
}

const FAST: HttpLimits = { ...HTTP_LIMITS, headersTimeoutMs: 300, requestTimeoutMs: 300, checkIntervalMs: 50, idleTimeoutMs: 400, keepAliveTimeoutMs: 300 };

describe('HttpEndpoints: the servers and their limits', () => {
  let dir: string;
  const servers: Server[] = [];

  before(() => { dir = mkdtempSync(join(tmpdir(), 'l3dsr-http-')); });
  after(async () => {
    for (const s of servers) { s.closeAllConnections(); await new Promise((r) => s.close(r)); }
    rmSync(dir, { recursive: true, force: true });
  });

  /** Serves `endpoint` (and, to read the counts, the control socket) from one HttpEndpoints. */
  async function serve(endpoint: HttpEndpointName, limits: HttpLimits = FAST, warnings: string[] = []): Promise<Served> {
    const taken = { full: 0, lean: 0 };
    const endpoints = new HttpEndpoints(async (full) => { taken[full ? 'full' : 'lean']++; return fakeSnapshot(full, warnings); }, limits);
    const listen = async (name: HttpEndpointName): Promise<Target> => {
      const server = endpoints.server(name);
      servers.push(server);
      const path = join(dir, `${servers.length}.sock`);
      await new Promise<void>((r) => (name === 'control' ? server.listen(path, r) : server.listen(0, '127.0.0.1', r)));
      return name === 'control' ? { path } : { port: (server.address() as AddressInfo).port };
    };
    const target = await listen(endpoint);
    const control = endpoint === 'control' ? target : await listen('control');
    const get = (p: string, at = target) => new Promise<{ status: number; body: string; headers: Record<string, unknown> }>((resolve, reject) => {
      const where = 'path' in at ? { socketPath: at.path } : { host: '127.0.0.1', port: at.port };
      request({ ...where, path: p, agent: false }, (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => { body += c; });
        res.on('end', () => resolve({ status: res.statusCode!, body, headers: res.headers }));
      }).on('error', reject).end();
    });
    const raw = (send: string | string[], ms = 5000) => new Promise<{ received: string; closed: boolean }>((resolve) => {
      let received = '';
      const sock = connect('path' in target ? { path: target.path } : { host: '127.0.0.1', port: target.port });
      const timer = setTimeout(() => { sock.destroy(); resolve({ received, closed: false }); }, ms);
      sock.setEncoding('latin1');
      sock.on('connect', async () => {
        for (const part of [send].flat()) {
          sock.write(part);
          await settle();
        }
      });
      sock.on('data', (c: string) => { received += c; });
      sock.on('error', () => {});
      sock.on('close', () => { clearTimeout(timer); resolve({ received, closed: true }); });
    });
    const rejected = async (reason: string) => {
      const status = JSON.parse((await get('/status', control)).body) as Pick<DaemonSnapshot, 'httpRejected'>;
      return status.httpRejected![endpoint]![reason as 'body'];
    };
    return { target, taken, get, raw, rejected };
  }

  it('/metrics and /status come from their own snapshots, whichever was asked first; /status only on the control socket', async () => {
    const s = await serve('control');
    for (const order of [['/status', '/metrics'], ['/metrics', '/status']]) {
      const pages = Object.fromEntries(await Promise.all(order.map(async (p) => [p, await s.get(p)] as const)));
      assert.equal(metric(pages['/metrics']!.body, 'l3dsr_tun_kernel_tx_dropped_total', { tun: 'lean0' }), 0);
      assert.equal((JSON.parse(pages['/status']!.body) as DaemonSnapshot).tun, 'full0');
    }
    const m = await serve('metrics');
    assert.equal((await m.get('/status')).status, 404);
    assert.equal(m.taken.full, 0);
  });

  it('scrapes at the same time share one snapshot; a scrape a second later takes a new one', async () => {
    const s = await serve('metrics');
    const pages = await Promise.all(Array.from({ length: 20 }, () => s.get('/metrics')));
    for (const p of pages) assert.equal(p.status, 200);
    assert.equal(s.taken.lean, 1);
    await new Promise((r) => setTimeout(r, 1100));
    await s.get('/metrics');
    assert.equal(s.taken.lean, 2);
  });

  it('a client pipelining more requests than allowed without reading is cut and counted; one within the limit gets every answer', async () => {
    const s = await serve('metrics');
    const one = 'GET /metrics HTTP/1.1\r\nHost: l3dsr\r\n\r\n';
    const flood = await s.raw(one.repeat(1000));
    assert.ok(flood.closed, 'the connection was not cut');
    assert.ok(s.taken.lean <= 1, `${s.taken.lean} snapshots for one flooding connection`);
    assert.equal(await s.rejected('pipelined'), 1);
    const polite = await s.raw(one.repeat(FAST.maxPipelined), 1000);
    assert.equal(polite.received.match(/HTTP\/1\.1 200 /g)?.length, FAST.maxPipelined, polite.received.slice(0, 500));
    assert.equal(await s.rejected('pipelined'), 1, 'a client within the limit was cut');
  });

  it('request heads split anywhere across reads are counted once: 3 × maxPipelined requests one after the other on one connection are all answered', async () => {
    const s = await serve('control');
    const sock = connect({ path: (s.target as { path: string }).path });
    sock.on('error', () => {});
    let received = '';
    sock.setEncoding('latin1');
    sock.on('data', (c: string) => { received += c; });
    await new Promise((r) => sock.once('connect', r));
    const answers = () => received.match(/HTTP\/1\.1 200 /g)?.length ?? 0;
    try {
      for (let i = 1; i <= 3 * FAST.maxPipelined; i++) {
        // Two writes, the second one starting in the middle of the blank line that ends the head.
        sock.write('GET /metrics HTTP/1.1\r\nHost: l3dsr\r\n\r');
        await settle();
        sock.write('\n');
        await waitFor(`answer ${i}`, 5000, async () => (answers() >= i ? true : undefined));
      }
    } finally {
      sock.destroy();
    }
    assert.equal(await s.rejected('pipelined'), 0);
  });

  it('a request with a body is refused with 413 and its connection closed', async () => {
    const s = await serve('metrics');
    const r = await s.raw('GET /metrics HTTP/1.1\r\nHost: l3dsr\r\nContent-Length: 1000000\r\n\r\nxxxx');
    assert.match(r.received, /^HTTP\/1\.1 413 /);
    assert.ok(r.closed);
    const chunked = await s.raw('GET /metrics HTTP/1.1\r\nHost: l3dsr\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nxxxx\r\n');
    assert.match(chunked.received, /^HTTP\/1\.1 413 /);
    assert.ok(chunked.closed);
    assert.equal(await s.rejected('body'), 2);
    assert.equal(s.taken.lean, 0, 'a request with a body took a snapshot');
  });

  it('a connection that sends half a request is answered 408 and closed after the headers timeout', async () => {
    const s = await serve('metrics');
    const r = await s.raw('GET /metrics HTTP/1.1\r\nHost: l3dsr\r\n');
    assert.ok(r.closed, 'still open');
    assert.match(r.received, /^HTTP\/1\.1 408 /);
    assert.equal(await s.rejected('timeout'), 1);
  });

  it('an unparsable request is answered 400, a head beyond maxHeaderSize 431; both closed', async () => {
    const s = await serve('control');
    const garbage = await s.raw('\x16\x03\x01 not http at all\r\n\r\n');
    assert.match(garbage.received, /^HTTP\/1\.1 400 /);
    assert.ok(garbage.closed);
    const big = await s.raw(`GET /metrics HTTP/1.1\r\nHost: l3dsr\r\nX-Big: ${'x'.repeat(FAST.maxHeaderSize)}\r\n\r\n`);
    assert.match(big.received, /^HTTP\/1\.1 431 /);
    assert.ok(big.closed);
    assert.equal(await s.rejected('malformed'), 2);
  });

  it('connections beyond maxConnections are closed on arrival, and counted', async () => {
    const s = await serve('metrics', { ...FAST, maxConnections: 2, headersTimeoutMs: 5000, requestTimeoutMs: 5000 });
    const idle = [s.raw('', 1000), s.raw('', 1000)];
    await new Promise((r) => setTimeout(r, 200));
    const third = await s.raw('GET /metrics HTTP/1.1\r\nHost: l3dsr\r\n\r\n', 3000);
    assert.equal(third.received, '');
    assert.ok(third.closed, 'the connection beyond the limit was served');
    await Promise.all(idle);
    assert.equal(await s.rejected('connections'), 1);
  });

  it('a client that stops reading its answers is cut after the idle timeout, and counted', async () => {
    // A /status page of about 1 MB: a few of them fill the socket buffers.
    const s = await serve('control', FAST, Array.from({ length: 10_000 }, (_, i) => `warning ${i} `.padEnd(100, '.')));
    const one = 'GET /status HTTP/1.1\r\nHost: l3dsr\r\n\r\n';
    const sock = connect({ path: (s.target as { path: string }).path }, () => sock.write(one.repeat(FAST.maxPipelined)));
    sock.pause();
    sock.on('error', () => {});
    try {
      // The client cannot see the cut without reading: the count says it.
      await waitFor('the stalled connection to be cut', 5000, async () => ((await s.rejected('stalled')) === 1 ? true : undefined));
    } finally {
      sock.destroy();
    }
  });

  it('the counts are in /metrics: l3dsr_http_rejected_total{endpoint,reason}, every reason, per server', async () => {
    const s = await serve('metrics');
    await s.raw('GET /metrics HTTP/1.1\r\nHost: l3dsr\r\nContent-Length: 1\r\n\r\nx');
    const page = (await s.get('/metrics')).body;
    assert.equal(metric(page, 'l3dsr_http_rejected_total', { endpoint: 'metrics', reason: 'body' }), 1);
    for (const reason of HTTP_REJECT_REASONS) {
      assert.equal(metric(page, 'l3dsr_http_rejected_total', { endpoint: 'control', reason }), 0);
      if (reason !== 'body') assert.equal(metric(page, 'l3dsr_http_rejected_total', { endpoint: 'metrics', reason }), 0);
    }
  });
});
