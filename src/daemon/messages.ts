// Messages between the daemon's main thread and its queue workers.

import type { Engine, OffloadMode } from '../config/config.js';
import type { PathConfig } from './data-path.js';
import type { QueueSnapshot } from './snapshot.js';

export interface WorkerSetup {
  queue: number;
  tun: string;
  multiQueue: boolean;
  engine: Engine;
  offload: OffloadMode;
  /** The core this queue runs, and its configuration. */
  path: PathConfig;
  slotSize: number;
  slotCount: number;
  batchMax: number;
}

export type ToWorker =
  | { type: 'configure'; id: number; config: PathConfig }
  | { type: 'snapshot'; id: number }
  | { type: 'stop'; id: number };

export type FromWorker =
  | {
    type: 'ready'; name: string; mode: string | null; detail: string | null; fallbackReason: string | null;
    /** Granted offloads (null: opened without IFF_VNET_HDR), and why auto went without. */
    offloads: string[] | null; offloadNote?: string;
    /** How the device's other queues must open (TunDevice.otherQueueOffload). */
    otherQueueOffload: OffloadMode;
  }
  | { type: 'reply'; id: number; ok: true; snapshot?: QueueSnapshot }
  | { type: 'reply'; id: number; ok: false; error: string }
  /** The data path failed; `code` is the system's (an errno of the TUN), or ERR_L3DSR_QUEUE. */
  | { type: 'failed'; code: string; message: string }
  | { type: 'log'; line: string };
