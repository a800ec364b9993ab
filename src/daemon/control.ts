// The daemon's own endpoints: a Unix socket only its user and root can
// reach (mode 0600) serving /status and /metrics (what `l3dsr status`
// reads), and optionally /metrics on TCP for Prometheus.

import type { Server } from 'node:http';
import { parseListenAddress } from '../config/config.js';
import { L3dsrError } from '../errors.js';
import { HttpEndpoints, type Snapshotter } from './http-endpoints.js';
import { listenPrivately } from './runtime-dir.js';

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
  if (typeof parsed === 'string') throw new L3dsrError('ERR_L3DSR_USAGE', `listen address "${addr}": ${parsed}`);
  return parsed;
}

export class ControlServers {
  readonly #servers: Server[] = [];

  /** `socketPath` must be free (claimSocketPath) in a checked runtime directory (prepareRuntimeDirectory). */
  async start(snapshot: Snapshotter, socketPath: string, metrics?: string): Promise<void> {
    const endpoints = new HttpEndpoints(snapshot);
    const control = endpoints.server('control');
    this.#servers.push(control);
    await listenPrivately(control, socketPath);
    if (metrics) {
      const server = endpoints.server('metrics');
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
