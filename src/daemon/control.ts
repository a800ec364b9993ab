// The daemon's own endpoints: a root-only Unix socket serving /status and
// /metrics (what `l3dsr status` reads), and optionally /metrics on TCP for
// Prometheus.

import type { Server } from 'node:http';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import { HttpEndpoints, type Snapshotter } from './http-endpoints.js';
import { parseListenAddress } from '../config/config.js';

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
    const endpoints = new HttpEndpoints(snapshot);
    const control = endpoints.server('control');
    await listen(control, socketPath);
    await chmod(socketPath, 0o600);
    this.#servers.push(control);
    this.#socketPath = socketPath;
    if (metrics) {
      const server = endpoints.server('metrics');
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
