// The daemon's own endpoints: a root-only Unix socket serving /status and
// /metrics (what `l3dsr status` reads), and optionally /metrics on TCP for
// Prometheus.

import { createServer, type Server } from 'node:http';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { parseListenAddress } from '../config/config.js';
import { renderMetrics } from '../metrics/prometheus.js';
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

/** `127.0.0.1:9109`, `[::1]:9109`: read by the parser that validated the setting, so both agree. */
export function hostPort(addr: string): { host: string; port: number } {
  const parsed = parseListenAddress(addr);
  if (typeof parsed === 'string') throw new Error(`listen address "${addr}": ${parsed}`);
  return parsed;
}

export class ControlServers {
  readonly #servers: Server[] = [];
  #socketPath?: string;

  async start(snapshot: Snapshotter, socketPath: string, metrics?: string): Promise<void> {
    await mkdir(dirname(socketPath), { recursive: true, mode: 0o755 });
    // A socket left by a daemon that was killed: nobody listens on it any more.
    await rm(socketPath, { force: true });
    const control = createServer(handler(snapshot, true));
    await listen(control, socketPath);
    await chmod(socketPath, 0o600);
    this.#servers.push(control);
    this.#socketPath = socketPath;
    if (metrics) {
      const server = createServer(handler(snapshot, false));
      await listen(server, hostPort(metrics));
      this.#servers.push(server);
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.#servers.map((s) => new Promise<void>((r) => { s.close(() => r()); s.closeAllConnections(); })));
    this.#servers.length = 0;
    if (this.#socketPath) await rm(this.#socketPath, { force: true });
  }
}
