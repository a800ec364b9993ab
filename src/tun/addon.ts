// Loads the native TUN addon (build/Release/l3dsr_tun.node) and describes
// its surface. The only module that knows where the binary lives.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { L3dsrError } from '../errors.js';
import type { Offload, TunCounters, TunEngine, TunReadMode, VNET_HEADER_BYTES } from './abi.generated.js';

/** Project root: this file runs as dist/src/tun/addon.js. */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const ADDON_PATH = join(root, 'build', 'Release', 'l3dsr_tun.node');

/**
 * Where a batch lives in the memory, all in bytes: what `attach` is told
 * (the addon checks it against the memory). Whoever owns the memory says
 * where (a core: rw.batch.layout(batchMax)).
 */
export interface NativeBatchLayout {
  slotBase: number;
  slotSize: number;
  slotCount: number;
  slotsOffset: number;
  lengthsOffset: number;
  batchMax: number;
}

export interface NativeEngineOptions {
  engine?: TunEngine;
  readMode?: TunReadMode;
  deferTaskrun?: boolean;
  readsInFlight?: number;
}

/** The counters (one table with the C side: scripts/abi.mjs), and two arrays. */
export interface NativeStats extends TunCounters {
  /** Index k counts batches of size 2^k .. 2^(k+1)-1. */
  batchSizeLog2: number[];
  /** Failed writes by errno name. */
  writeErrorsByCode: Record<string, number>;
}

export type { Offload };

export interface NativeTunHandle {
  readonly name: string;
  /** -1 once closed. */
  readonly fd: number;
  readonly mode: Exclude<TunEngine, 'auto'> | null;
  readonly detail: string | null;
  readonly fallbackReason: string | null;
  /** VNET_HEADER_BYTES when opened with offload (IFF_VNET_HDR), else 0. */
  readonly vnetHeaderBytes: 0 | typeof VNET_HEADER_BYTES;
  /** Granted offloads; null when opened without. */
  readonly offloads: Offload[] | null;
  attach(
    memory: WebAssembly.Memory,
    layout: NativeBatchLayout,
    options: NativeEngineOptions,
    onBatch: (n: number) => void,
    onError: (err: Error) => void,
  ): void;
  close(): void;
  stats(): NativeStats;
  writePacket(packet: Uint8Array): number;
  ref(): void;
  unref(): void;
}

export interface NativeAddon {
  /** `offload`: open with IFF_VNET_HDR and probe the offloads (TunDevice.open decides when). */
  TunHandle: new (name: string, multiQueue: boolean, options?: { offload?: boolean }) => NativeTunHandle;
  /** SO_NETNS_COOKIE of the calling thread's network namespace: never given to another namespace before a reboot. */
  netnsCookie(): bigint;
}

let cached: NativeAddon | undefined;

/** The addon, loaded once per thread; a clear error if it was not built. */
export function loadAddon(): NativeAddon {
  if (cached) return cached;
  if (!existsSync(ADDON_PATH)) {
    throw new L3dsrError('ERR_L3DSR_NO_ADDON',
      `native TUN addon not built: ${ADDON_PATH} is missing (run \`npm run build\`; it needs node-gyp and a C compiler)`);
  }
  const require = createRequire(import.meta.url);
  cached = require(ADDON_PATH) as NativeAddon;
  return cached;
}
