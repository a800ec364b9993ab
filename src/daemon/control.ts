// The daemon's own endpoints: a Unix socket only its user and root can
// reach (mode 0600) serving /status and /metrics (what `l3dsr status`
// reads), and optionally /metrics on TCP for Prometheus.

import { createServer, type Server } from 'node:http';
import { renderMetrics } from '../metrics/prometheus.js';
import { listenPrivately } from './runtime-dir.js';
import { snapshotJson, type DaemonSnapshot } from './snapshot.js';

/** A snapshot; `full` adds what only /status shows and costs tc commands to read (the steering). */
export type Snapshotter = (full: boolean) => Promise<DaemonSnapshot>;

function handler(snapshot: Snapshotter, withStatus: boolean) {
  return async (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    try {
      if (req.method !== 'GET') {
        res.writeHead(405, { allow: 'GET' }).end('only GET\n');
      } else if (path === '/metrics') {
        res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(renderMetrics(await snapshot(false)));
      } else if (path === '/status' && withStatus) {
        res.writeHead(200, { 'content-type': 'application/json' }).end(snapshotJson(await snapshot(true)));
      } else {
        res.writeHead(404).end(`not found: ${path}\n`);
      }
    } catch (err) {
      res.writeHead(500).end(`${(err as Error).message}\n`);
    }
  };
}

function listen(server: Server, target: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => { server.off('error', reject); resolve(); };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target.port, target.host, done);
  });
}

/** Parses `127.0.0.1:9109`, `[::1]:9109`, `:9109`. */
export function hostPort(addr: string): { host: string; port: number } {
  const i = addr.lastIndexOf(':');
  const host = addr.slice(0, i).replace(/^\[|\]$/g, '');
  return { host: host === '' ? '::' : host, port: Number(addr.slice(i + 1)) };
}

export class ControlServers {
  readonly #servers: Server[] = [];

  /** `socketPath` must be free (claimSocketPath) in a checked runtime directory (prepareRuntimeDirectory). */
  async start(snapshot: Snapshotter, socketPath: string, metrics?: string): Promise<void> {
    const control = createServer(handler(snapshot, true));
    this.#servers.push(control);
    await listenPrivately(control, socketPath);
    if (metrics) {
      const server = createServer(handler(snapshot, false));
      await listen(server, hostPort(metrics));
      this.#servers.push(server);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); })));
    // Closing a listening Unix socket server removes its socket file (libuv unlinks it).
    this.#servers.length = 0;
  }
}
