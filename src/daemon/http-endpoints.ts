// The daemon's HTTP endpoints, bounded against clients that abuse them:
// /metrics (on the control socket and on TCP) and /status (control socket
// only). A snapshot asks every queue worker for its counters (and /status
// runs tc), so requests share rendered pages instead of each taking one:
// at most one snapshot runs at a time, a /metrics page serves every scrape
// for about a second, and each server caps its connections, the requests a
// client may pipeline, the time a request may take and what it may send.
// Unbounded, 4 connections pipelining GET /metrics grew the daemon to 3.6 GB
// in 30 s and kept it from answering for 2 minutes after they stopped.

import { STATUS_CODES, createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { performance } from 'node:perf_hooks';
import { renderMetrics } from '../metrics/prometheus.js';
import { snapshotJson, type DaemonSnapshot } from './snapshot.js';

/** A snapshot; `full` adds what only /status shows and costs tc commands to read (the steering). */
export type Snapshotter = (full: boolean) => Promise<DaemonSnapshot>;

/** The control socket (root only: /status and /metrics) or the `metrics` TCP listener. */
export type HttpEndpointName = 'control' | 'metrics';

/** Why a server refused a connection or a request, or cut a connection (l3dsr_http_rejected_total{reason}). */
export const HTTP_REJECT_REASONS = [
  /** A connection beyond maxConnections, closed on arrival. */
  'connections',
  /** A connection with more than maxPipelined requests unanswered, closed. */
  'pipelined',
  /** A request whose head did not arrive within headersTimeoutMs / requestTimeoutMs (408). */
  'timeout',
  /** A connection with answers pending and no progress for idleTimeoutMs (a client that stopped reading), closed. */
  'stalled',
  /** A request with a body (413): the endpoints are GET only. */
  'body',
  /** A request head that does not parse or is too large (400, 431). */
  'malformed',
] as const;
export type HttpRejectReason = (typeof HTTP_REJECT_REASONS)[number];
export type HttpRejected = Partial<Record<HttpEndpointName, Record<HttpRejectReason, number>>>;

/**
 * The limits of each server. Prometheus sends one GET per scrape and
 * `l3dsr status` one GET per run; what goes beyond is a client misbehaving.
 */
export const HTTP_LIMITS = {
  /**
   * Connections open at once, per server (so a TCP flood leaves the control
   * socket usable). A scraper needs one; 16 leaves room for an HA pair of
   * Prometheus, a person with curl and clients on their way out.
   */
  maxConnections: 16,
  /**
   * Requests a connection may have unanswered (sent but not yet answered;
   * beyond, the connection is cut). Node answers pipelined requests in
   * order and parses them as fast as they arrive, so a client that never
   * reads would otherwise make us hold a request and an answer for every
   * request it sends. No scraper pipelines; 8 tolerates a client that does.
   */
  maxPipelined: 8,
  /**
   * Requests per connection (Node's maxRequestsPerSocket): after 100 a
   * keep-alive connection is closed, so one client cannot keep a slot of
   * maxConnections forever by sending requests back to back.
   */
  maxRequestsPerSocket: 100,
  /** The request line and headers: a few hundred bytes that any client sends at once. 5 s also covers a lossy link. */
  headersTimeoutMs: 5000,
  /** The whole request: a GET has no body, so the same as its head. */
  requestTimeoutMs: 5000,
  /** An idle keep-alive connection: scrapes come 15 s or more apart; this covers a few requests in a row. */
  keepAliveTimeoutMs: 5000,
  /**
   * A connection with no I/O at all (Node's server.timeout), typically a
   * client that does not read its answers: Prometheus gives up on a scrape
   * after 10 s (its default scrape_timeout), so such a connection serves nobody.
   */
  idleTimeoutMs: 10_000,
  /** How often Node checks the header and request deadlines (its default, 30 s, would let them run 30 s late). */
  checkIntervalMs: 1000,
  /** Bytes of request head (Node's default is 16 KiB): a scrape sends well under 1 KiB; proxies add some. */
  maxHeaderSize: 8192,
  /** Headers parsed per request (the rest are ignored): a scrape sends about 5. */
  maxHeadersCount: 32,
} as const;
export type HttpLimits = { [K in keyof typeof HTTP_LIMITS]: number };

/**
 * How old a /metrics page may be. Scrapes come 15 s or more apart, so a
 * page a second old is as good, and a flood of scrapes costs one snapshot
 * per second. /status is never served older than the request (tests and
 * people compare it before and after something).
 */
export const METRICS_MAX_AGE_MS = 1000;

/** Runs the functions given to it one at a time, in order. */
export function oneAtATime(): <T>(fn: () => Promise<T>) => Promise<T> {
  let tail: Promise<unknown> = Promise.resolve();
  return <T>(fn: () => Promise<T>) => {
    const run = tail.then(fn);
    tail = run.catch(() => {});
    return run;
  };
}

/**
 * A page rendered on demand and shared: every request that may see the
 * same page gets the same render. A render that began less than `maxAgeMs`
 * ago (finished or not) serves; otherwise the request waits for the next
 * one, queued behind the running one: at most one runs and one waits.
 * With `maxAgeMs` 0 a request always gets a render that began after it
 * arrived. Failures are not kept.
 */
export class SharedPage {
  #last?: { at: number; page: string };
  #running?: { at?: number; page: Promise<string> };
  #queued?: Promise<string>;

  constructor(
    readonly render: () => Promise<string>,
    readonly maxAgeMs: number,
    readonly serialize: <T>(fn: () => Promise<T>) => Promise<T>,
    readonly now: () => number = () => performance.now(),
  ) {}

  get(): Promise<string> {
    if (this.#last && this.#fresh(this.#last.at)) return Promise.resolve(this.#last.page);
    if (this.#queued) return this.#queued;
    const running = this.#running;
    if (!running) return this.#start();
    // Not begun yet (waiting for the other page's render): it will begin after this request.
    if (running.at === undefined || this.#fresh(running.at)) return running.page;
    const next = () => { this.#queued = undefined; return this.#start(); };
    this.#queued = running.page.then(next, next);
    return this.#queued;
  }

  #fresh(at: number): boolean {
    return this.now() - at < this.maxAgeMs;
  }

  #start(): Promise<string> {
    const run: { at?: number; page: Promise<string> } = {
      page: this.serialize(() => { run.at = this.now(); return this.render(); }),
    };
    this.#running = run;
    // Registered before any queued render's continuation, so that one finds #running cleared.
    run.page.then((page) => {
      this.#running = undefined;
      if (!this.#last || this.#last.at < run.at!) this.#last = { at: run.at!, page };
    }, () => { this.#running = undefined; });
    return run.page;
  }
}

const TEXT = { 'content-type': 'text/plain; charset=utf-8' };
const EMPTY = Buffer.alloc(0);
/** Where a request head ends (the endpoints take no body). */
const HEAD_END = Buffer.from('\r\n\r\n');

/** What a server keeps per connection. */
interface Connection {
  /** Request heads received (counted in the bytes, before Node parses them). */
  heads: number;
  /** Requests Node parsed and handed to us. */
  requests: number;
  /** Of those, answered (the answer handed to the socket). */
  answered: number;
  /** The last bytes of the previous read, for a head end split across two reads. */
  tail: Buffer;
}
/** What Node answers to a request head it refuses (without a 'clientError' listener it writes the same). */
const CLIENT_ERROR_STATUS: Record<string, number> = { ERR_HTTP_REQUEST_TIMEOUT: 408, HPE_HEADER_OVERFLOW: 431 };

/** One request answered, for the debug log. */
export interface Served {
  endpoint: HttpEndpointName;
  method: string;
  path: string;
  status: number;
}

/** The pages of one daemon and the servers that serve them. */
export class HttpEndpoints {
  readonly #rejected: HttpRejected = {};
  readonly #metrics: SharedPage;
  readonly #status: SharedPage;

  constructor(snapshot: Snapshotter, readonly limits: HttpLimits = HTTP_LIMITS, readonly onServed?: (served: Served) => void) {
    const serialize = oneAtATime();
    const take = async (full: boolean): Promise<DaemonSnapshot> => ({ ...await snapshot(full), httpRejected: structuredClone(this.#rejected) });
    this.#metrics = new SharedPage(async () => renderMetrics(await take(false)), METRICS_MAX_AGE_MS, serialize);
    this.#status = new SharedPage(async () => snapshotJson(await take(true)), 0, serialize);
  }

  /**
   * A server for one endpoint, with every limit set; the caller listens and
   * closes. The servers of one endpoint share its counts (a metrics address
   * moved by a reload goes on counting).
   */
  server(endpoint: HttpEndpointName): Server {
    const l = this.limits;
    const counts = this.#rejected[endpoint] ??= Object.fromEntries(HTTP_REJECT_REASONS.map((r) => [r, 0])) as Record<HttpRejectReason, number>;
    const connections = new WeakMap<Socket, Connection>();
    const cut = (socket: Socket, reason: HttpRejectReason) => {
      counts[reason]++;
      socket.destroy();
    };
    const server = createServer({
      headersTimeout: l.headersTimeoutMs,
      requestTimeout: l.requestTimeoutMs,
      keepAliveTimeout: l.keepAliveTimeoutMs,
      connectionsCheckingInterval: l.checkIntervalMs,
      maxHeaderSize: l.maxHeaderSize,
    });
    server.maxConnections = l.maxConnections;
    server.maxRequestsPerSocket = l.maxRequestsPerSocket;
    server.maxHeadersCount = l.maxHeadersCount;
    server.timeout = l.idleTimeoutMs;

    server.on('drop', () => { counts.connections++; });
    server.on('connection', (socket: Socket) => {
      const c: Connection = { heads: 0, requests: 0, answered: 0, tail: EMPTY };
      connections.set(socket, c);
      // Node closes the connection; it was stalled if answers were still waiting (otherwise an idle keep-alive).
      socket.on('timeout', () => { if (c.requests > c.answered) counts.stalled++; });
      gateReads(socket, c, l.maxPipelined, () => cut(socket, 'pipelined'));
    });
    server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
      if (err.code === 'ECONNRESET' || err.code === 'EPIPE') { socket.destroy(); return; }
      const c = connections.get(socket);
      // What Node itself answers, but only between responses: never into the middle of one.
      if (socket.writable && (!c || c.requests === c.answered)) {
        const status = CLIENT_ERROR_STATUS[err.code ?? ''] ?? 400;
        socket.write(`HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\nConnection: close\r\n\r\n`);
      }
      cut(socket, err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? 'timeout' : 'malformed');
    });
    server.on('request', (req: IncomingMessage, res: ServerResponse) => {
      const c = connections.get(req.socket);
      if (!c || req.socket.destroyed) return;
      // Exact where the count in the bytes (gateReads) is not: a client ending its lines with a bare LF.
      if (++c.requests - c.answered > l.maxPipelined) { cut(req.socket, 'pipelined'); return; }
      res.once('finish', () => {
        c.answered++;
        this.onServed?.({ endpoint, method: req.method ?? '', path: pathOf(req), status: res.statusCode });
      });
      void this.#answer(req, res, endpoint, counts);
    });
    return server;
  }

  async #answer(req: IncomingMessage, res: ServerResponse, endpoint: HttpEndpointName, counts: Record<HttpRejectReason, number>): Promise<void> {
    const path = pathOf(req);
    try {
      if (hasBody(req)) {
        // Closing the connection keeps Node from reading the body to reach the next request.
        counts.body++;
        res.writeHead(413, { ...TEXT, connection: 'close' }).end('a request body is not accepted: GET only\n');
      } else if (req.method !== 'GET') {
        res.writeHead(405, { ...TEXT, allow: 'GET' }).end('only GET\n');
      } else if (path === '/metrics') {
        const page = await this.#metrics.get();
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(page);
      } else if (path === '/status' && endpoint === 'control') {
        const page = await this.#status.get();
        res.writeHead(200, { 'content-type': 'application/json' }).end(page);
      } else {
        res.writeHead(404, TEXT).end(`not found: ${path}\n`);
      }
    } catch (err) {
      res.writeHead(500, TEXT).end(`${(err as Error).message}\n`);
    }
  }
}

/**
 * Node's http server feeds its parser from the one 'data' listener it adds
 * to a connection, and parses a whole read at once (up to 64 KiB: some
 * 1 700 pipelined GETs, each a few KiB of objects until the connection
 * closes, even once it is cut). So the request heads are counted in the
 * bytes first, and a read that would take the client beyond `maxPipelined`
 * unanswered requests cuts the connection before Node parses any of it.
 * (A 'data' listener of our own also makes Node hand the reads to
 * JavaScript rather than read the socket into its parser directly.)
 * (Were Node to feed its parser some other way, the check on each parsed
 * request still holds the limit, at that cost.)
 */
function gateReads(socket: Socket, c: Connection, maxPipelined: number, cut: () => void): void {
  const [parse, ...others] = socket.listeners('data') as ((chunk: Buffer) => void)[];
  if (!parse || others.length) return;
  socket.removeListener('data', parse);
  socket.on('data', (chunk: Buffer) => {
    const seen = c.tail.length ? Buffer.concat([c.tail, chunk]) : chunk;
    const room = maxPipelined - (c.heads - c.answered);
    let heads = 0;
    let from = 0;
    for (let i = seen.indexOf(HEAD_END); i >= 0 && heads <= room; i = seen.indexOf(HEAD_END, from)) {
      heads++;
      from = i + HEAD_END.length;
    }
    if (heads > room) { cut(); return; }
    c.heads += heads;
    // A head's end may straddle two reads.
    c.tail = Buffer.from(seen.subarray(Math.max(from, seen.length - (HEAD_END.length - 1))));
    parse(chunk);
  });
}

const pathOf = (req: IncomingMessage): string => (req.url ?? '/').split('?')[0];

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}
