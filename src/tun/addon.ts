// Loads the native TUN addon (build/Release/l3dsr_tun.node) and describes
// its surface. The only module that knows where the binary lives.
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { L3dsrError } from '../errors.js';

/** Project root: this file runs as dist/src/tun/addon.js. */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const ADDON_PATH = join(root, 'build', 'Release', 'l3dsr_tun.node');

/** What `attach` is told about where the batch lives in the memory. */
export interface NativeBatchLayout {
  slotBase: number;
  slotSize: number;
  slotCount: number;
  slotsOffset: number;
  lengthsOffset: number;
  batchMax: number;
}

export interface NativeEngineOptions {
  engine?: 'auto' | 'io_uring' | 'readwrite';
  readMode?: 'auto' | 'multishot' | 'single';
  deferTaskrun?: boolean;
  readsInFlight?: number;
}

export interface NativeStats {
  packetsRead: number;
  bytesRead: number;
  packetsWritten: number;
  bytesWritten: number;
  batches: number;
  /** Index k counts batches of size 2^k .. 2^(k+1)-1. */
  batchSizeLog2: number[];
  skipped: number;
  badLengths: number;
  writeErrors: number;
  writeDrops: number;
  writeErrorsByCode: Record<string, number>;
  readErrors: number;
  bufferRingEmpty: number;
  readRearms: number;
  wakeups: number;
  callbackErrors: number;
  discardedOnClose: number;
  /** Reads that were GSO super-packets (only with offload). */
  gsoPackets: number;
  /** The MTU-sized segments those super-packets stand for. */
  gsoSegments: number;
}

/** TUNSETOFFLOAD bits by name, as the addon reports the granted ones. */
export type Offload = 'csum' | 'tso4' | 'tso6' | 'tso_ecn' | 'uso4' | 'uso6';

export interface NativeTunHandle {
  readonly name: string;
  /** -1 once closed. */
  readonly fd: number;
  readonly mode: 'io_uring' | 'readwrite' | null;
  readonly detail: string | null;
  readonly fallbackReason: string | null;
  /** 10 when opened with offload (IFF_VNET_HDR), else 0. */
  readonly vnetHeaderBytes: number;
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
