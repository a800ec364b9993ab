// The daemon's own endpoints: a Unix socket only its user and root can
// reach (mode 0600) serving /status and /metrics (what `l3dsr status`
// reads), and optionally /metrics on TCP for Prometheus, whose address a
// reload may move.

import type { Server } from 'node:http';
import { parseListenAddress } from '../config/config.js';
import { errnoOf, L3dsrError } from '../errors.js';
import { HttpEndpoints, type Served, type Snapshotter } from './http-endpoints.js';
import { listenPrivately } from './runtime-dir.js';

function listen(server: Server, target: string | { host: string; port: number }): Promise<void> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => { server.off('error', reject); resolve(); };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target.port, target.host, done);
  });
}

function close(server: Server): Promise<void> {
  return new Promise<void>((r) => { server.close(() => r()); server.closeAllConnections(); });
}

/** `127.0.0.1:9109`, `[::1]:9109`: read by the parser that validated the setting, so both agree. */
export function hostPort(addr: string): { host: string; port: number } {
  const parsed = parseListenAddress(addr);
  if (typeof parsed === 'string') throw new L3dsrError('ERR_L3DSR_USAGE', `listen address "${addr}": ${parsed}`);
  return parsed;
}

/** A metrics listener a reload has opened (or closed) but not yet made the one in use. */
export interface MetricsChange {
  /** Makes it the one in use; the old listener stops. */
  commit(): Promise<void>;
  /** Goes back to the old listener. */
  abandon(): Promise<void>;
}

interface Listener {
  address: string;
  server: Server;
}

export class ControlServers {
  #endpoints: HttpEndpoints | undefined;
  #control: Server | undefined;
  #metrics: Listener | undefined;

  /** `socketPath` must be free (claimSocketPath) in a checked runtime directory (prepareRuntimeDirectory). */
  async start(snapshot: Snapshotter, socketPath: string, metrics?: string, onServed?: (served: Served) => void): Promise<void> {
    this.#endpoints = new HttpEndpoints(snapshot, undefined, onServed);
    this.#control = this.#endpoints.server('control');
    await listenPrivately(this.#control, socketPath);
    if (metrics) this.#metrics = await this.#openMetrics(metrics);
  }

  /**
   * Opens the listener of a new metrics address (undefined: none) while the
   * old one still serves. Throws an L3dsrError (ERR_L3DSR_LISTEN) when it
   * cannot, and the old one serves on. Moving to another address on the
   * same port (127.0.0.1:9109 to 0.0.0.0:9109) cannot open the new one
   * first: the old one is closed a moment before, and opened again if the
   * new one fails or is abandoned.
   */
  async prepareMetrics(address: string | undefined): Promise<MetricsChange> {
    const old = this.#metrics;
    const use = async (next: Listener | undefined, closeOld: boolean) => {
      this.#metrics = next;
      if (old && closeOld) await close(old.server);
    };
    if (address === undefined) return { commit: () => use(undefined, true), abandon: async () => {} };
    try {
      const next = await this.#openMetrics(address);
      return { commit: () => use(next, true), abandon: () => close(next.server) };
    } catch (err) {
      const samePort = old !== undefined && errnoOf((err as Error).cause) === 'EADDRINUSE' && hostPort(old.address).port === hostPort(address).port;
      if (!samePort) throw err;
    }
    await close(old.server);
    let next: Listener;
    try {
      next = await this.#openMetrics(address);
    } catch (err) {
      await this.#reopen(old);
      throw err;
    }
    return { commit: () => use(next, false), abandon: async () => { await close(next.server); await this.#reopen(old); } };
  }

  async close(): Promise<void> {
    const servers = [this.#control, this.#metrics?.server].filter((s): s is Server => s !== undefined);
    this.#control = undefined;
    this.#metrics = undefined;
    // Closing a listening Unix socket server removes its socket file (libuv unlinks it).
    await Promise.all(servers.map(close));
  }

  async #openMetrics(address: string): Promise<Listener> {
    const server = this.#endpoints!.server('metrics');
    try {
      await listen(server, hostPort(address));
    } catch (err) {
      throw new L3dsrError('ERR_L3DSR_LISTEN', `metrics ${address}: cannot listen (${errnoOf(err) ?? (err as Error).message})`, { cause: err });
    }
    return { address, server };
  }

  /** The old listener again, after a move on its port that did not happen; if even that fails, no listener. */
  async #reopen(old: Listener): Promise<void> {
    try {
      this.#metrics = await this.#openMetrics(old.address);
    } catch (err) {
      this.#metrics = undefined;
      throw new L3dsrError('ERR_L3DSR_LISTEN', `${(err as Error).message}; no metrics listener until a reload or a restart opens one`, { cause: err });
    }
  }
}
