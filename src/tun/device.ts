// A TUN queue with batch-first I/O over caller-owned memory. The native
// addon reads packets straight into slots of that memory, calls onBatch(n)
// once per batch, and writes back every entry whose length is still > 0.
import { interfaceNameProblem } from '../system/interface-name.js';
import type { Offload, TunEngine, TunReadMode } from './abi.generated.js';
import { loadAddon } from './addon.js';
import type { NativeBatchLayout, NativeStats, NativeTunHandle } from './addon.js';
import { openWithOffload, otherQueuePolicy, segmentationGranted, type OffloadPolicy } from './offload-policy.js';

export type { Offload, OffloadPolicy, TunEngine, TunReadMode };

/**
 * VNET_HEADER_BYTES: the virtio-net header in front of every packet of a
 * device opened with offload (struct virtio_net_hdr without num_buffers).
 * OFFLOAD_MIN_SLOT_SIZE: the smallest slot with segmentation offload, a
 * 64 KiB GSO packet plus the header.
 */
export { OFFLOAD_MIN_SLOT_SIZE, VNET_HEADER_BYTES } from './abi.generated.js';

export type TunMode = Exclude<TunEngine, 'auto'>;

export interface TunOpenOptions {
  /** Interface name (see interfaceNameProblem: at most 15 bytes of UTF-8); empty lets the kernel pick `tunN`. */
  name: string;
  /** Open one queue of an IFF_MULTI_QUEUE device (one per worker). */
  multiQueue?: boolean;
  /** `auto` prefers io_uring and falls back to read()/write(). */
  engine?: TunEngine;
  /** io_uring only: `auto` uses multishot read when the kernel has it. */
  readMode?: TunReadMode;
  /** io_uring only: IORING_SETUP_DEFER_TASKRUN (default: when available). */
  deferTaskrun?: boolean;
  /** io_uring single-shot reads kept in flight (default 32). */
  readsInFlight?: number;
  /**
   * With `yes` or `auto` the queue opens with IFF_VNET_HDR (a 10-byte
   * virtio-net header in front of every packet read and written, lengths
   * include it) and asks for checksum, TSO4/TSO6/TSO-ECN and USO offloads,
   * each probed: `offloads` says which the kernel granted. `yes` requires
   * TCP segmentation (TSO4 and TSO6) and fails with EOPNOTSUPP without it;
   * `auto` takes what comes, without the header if the kernel refuses it
   * (`offloadNote` says why). With any segmentation granted one read can
   * carry a 64 KiB GSO super-packet, so slots must hold
   * OFFLOAD_MIN_SLOT_SIZE. The header and offloads belong to the device:
   * open its other queues with `otherQueueOffload`. Default `no`.
   */
  offload?: OffloadPolicy;
  /** Where the chosen engine is reported; default stderr. */
  log?: (line: string) => void;
}

/**
 * Where a batch lives in the memory, all in bytes. Packet i of a batch is
 * in slot `slots[i]` (at slotBase + slot * slotSize) and is `lengths[i]`
 * bytes long; the callback sets `lengths[i] = 0` to drop it. slotSize must
 * hold the largest packet (the MTU; with segmentation offload a 64 KiB GSO
 * packet and its header, OFFLOAD_MIN_SLOT_SIZE); slotCount >= batchMax, and with
 * io_uring some slots beyond batchMax keep reads going while writes are in
 * flight (2 x batchMax is a good start).
 */
export type BatchLayout = NativeBatchLayout;

export type TunStats = NativeStats;

/** An error from the TUN data path or from opening the device. */
export interface TunError extends Error {
  /** errno name: EPERM, EBUSY, EBADFD, ... */
  code: string;
  errno?: number;
  syscall?: string;
}

export class TunDevice {
  /** Called once when the data path stops on an error (e.g. the device was
   * deleted: EBADFD). Without a handler the error is thrown as uncaught. */
  onError: ((err: TunError) => void) | null = null;

  readonly #handle: NativeTunHandle;
  readonly #options: TunOpenOptions;
  readonly #offloadNote: string | null;

  private constructor(handle: NativeTunHandle, options: TunOpenOptions, offloadNote: string | null) {
    this.#handle = handle;
    this.#options = options;
    this.#offloadNote = offloadNote;
  }

  /** Opens one queue of TUN device `name` (IFF_TUN | IFF_NO_PI, and
   * IFF_VNET_HDR as `offload` says). Throws a TunError whose code is the
   * errno name (ENAMETOOLONG or EINVAL for a name the kernel would refuse,
   * EOPNOTSUPP for `offload: 'yes'` without TCP segmentation). */
  static open(options: TunOpenOptions): TunDevice {
    const problem = options.name === '' ? undefined : interfaceNameProblem(options.name);
    if (problem) throw Object.assign(new RangeError(`TUN device name ${problem.message}`), { code: problem.errno });
    const { TunHandle } = loadAddon();
    const { handle, note } = openWithOffload(options.offload ?? 'no',
      (header) => new TunHandle(options.name, options.multiQueue ?? false, { offload: header }));
    return new TunDevice(handle, options, note);
  }

  /** The interface name as the kernel assigned it. */
  get name(): string {
    return this.#handle.name;
  }
  /** The engine in use; null before attach(). */
  get mode(): TunMode | null {
    return this.#handle.mode;
  }
  /** How the engine runs, e.g. `multishot read, defer taskrun`. */
  get detail(): string | null {
    return this.#handle.detail;
  }
  /** Why `auto` did not get io_uring; null if it did (or was not asked). */
  get fallbackReason(): string | null {
    return this.#handle.fallbackReason;
  }
  /** Bytes of virtio-net header in front of each packet: VNET_HEADER_BYTES with offload, else 0. */
  get vnetHeaderBytes(): NativeTunHandle['vnetHeaderBytes'] {
    return this.#handle.vnetHeaderBytes;
  }
  /** The offloads the kernel granted (e.g. csum, tso4, tso6); null when opened without the header. */
  get offloads(): readonly Offload[] | null {
    return this.#handle.offloads;
  }
  /** Whether TCP segmentation (TSO4 and TSO6) was granted: reads carry TCP super-packets of either family. */
  get segmentationOffload(): boolean {
    return segmentationGranted(this.offloads);
  }
  /** Why the queue runs without TCP segmentation although `offload` asked for it; null when it does not. */
  get offloadNote(): string | null {
    return this.#offloadNote;
  }
  /** The `offload` that opens another queue of this device alike (see TunOpenOptions.offload). */
  get otherQueueOffload(): OffloadPolicy {
    return otherQueuePolicy(this.#options.offload ?? 'no', this.vnetHeaderBytes);
  }
  /** The TUN file descriptor, -1 once closed. */
  get fd(): number {
    return this.#handle.fd;
  }
  get closed(): boolean {
    return this.#handle.fd < 0;
  }

  /**
   * Starts the data path on the slots in `memory`, kept alive until close().
   * A WebAssembly.Memory, not an ArrayBuffer: JavaScript cannot transfer or
   * detach its buffer under the kernel. It may grow: V8 grows it in place,
   * and the data path goes on with the new buffer; should it ever move, the
   * data path stops with EFAULT through onError before the old address is
   * used again. `onBatch(n)` runs once per batch with entries 0..n-1 filled;
   * when it returns, entries with length > 0 are written back into the
   * device from their slots.
   */
  attach(memory: WebAssembly.Memory, layout: BatchLayout, onBatch: (n: number) => void): void {
    const o = this.#options;
    this.#handle.attach(
      memory,
      layout,
      { engine: o.engine ?? 'auto', readMode: o.readMode, deferTaskrun: o.deferTaskrun, readsInFlight: o.readsInFlight },
      onBatch,
      (err) => this.#fail(err as TunError),
    );
    const log = o.log ?? ((line: string) => process.stderr.write(`${line}\n`));
    const fallback = this.fallbackReason ? ` (io_uring unavailable: ${this.fallbackReason})` : '';
    const offloads = this.offloads === null ? '' : `; offloads granted: ${this.offloads.join(' ') || 'none'}`;
    log(`tun ${this.name}: engine ${this.mode}, ${this.detail}${fallback}${offloads}`);
  }

  /** Counters since open, as plain numbers. */
  stats(): TunStats {
    return this.#handle.stats();
  }

  /** Writes one packet with a plain write() (tests, diagnostics); with
   * offload it must start with the virtio-net header. */
  writePacket(packet: Uint8Array): number {
    return this.#handle.writePacket(packet);
  }

  /** Whether an attached device keeps the event loop alive (default yes). */
  ref(): void {
    this.#handle.ref();
  }
  unref(): void {
    this.#handle.unref();
  }

  /** Stops the data path, cancels and reaps in-flight I/O, closes the fd.
   * Idempotent. Called inside onBatch it completes when onBatch returns,
   * and that batch is not written. */
  close(): void {
    this.#handle.close();
  }

  #fail(err: TunError): void {
    if (this.onError) this.onError(err);
    else throw err;
  }
}
