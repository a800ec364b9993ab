// What `offload` asks of a TUN device, and what it settles for. The one
// place that decides whether a device gets the virtio-net header, what
// counts as segmentation granted, and how the device's other queues must
// be opened: the daemon and the tools only pass the policy on.
import type { Offload } from './abi.generated.js';

/**
 * `no`: a plain TUN. `yes`: the virtio-net header, and TCP segmentation
 * (TSO4 and TSO6) must be granted, else the open fails (EOPNOTSUPP).
 * `auto`: the header if the kernel takes it, and whatever it grants.
 */
export const OFFLOAD_POLICIES = ['auto', 'yes', 'no'] as const;
export type OffloadPolicy = (typeof OFFLOAD_POLICIES)[number];

/** Segmentation granted: TCP super-packets of both families, what `yes` requires. */
const SEGMENTATION: readonly Offload[] = ['tso4', 'tso6'];

export function segmentationGranted(offloads: readonly Offload[] | null): boolean {
  return offloads !== null && SEGMENTATION.every((o) => offloads.includes(o));
}

/** What the addon's constructor gives back, as far as the policy cares. */
export interface OffloadHandle {
  readonly name: string;
  readonly offloads: readonly Offload[] | null;
  close(): void;
}

export interface PolicyOutcome<H extends OffloadHandle> {
  handle: H;
  /** Why the device runs without TCP segmentation although the policy asked for offload; null if it does not. */
  note: string | null;
}

/** Whether an error of the addon is the kernel refusing IFF_VNET_HDR itself (not the device name, the permissions...). */
function headerRefused(err: unknown): boolean {
  const e = err as { code?: string; syscall?: string };
  return e.code === 'EINVAL' && /TUNSETIFF|TUNSETVNETHDRSZ/.test(e.syscall ?? '');
}

/**
 * Opens one queue as `policy` says: `open(header)` opens it with or without
 * the virtio-net header. `auto` falls back to no header when the kernel
 * refuses it (a real error comes back from the second try), and keeps the
 * header without segmentation (it belongs to the device, and costs 10
 * bytes a packet); `yes` closes the queue and throws then.
 */
export function openWithOffload<H extends OffloadHandle>(policy: OffloadPolicy, open: (header: boolean) => H): PolicyOutcome<H> {
  if (!OFFLOAD_POLICIES.includes(policy)) {
    throw Object.assign(new TypeError(`offload must be 'auto', 'yes' or 'no', got ${String(policy)}`), { code: 'ERR_INVALID_ARG_VALUE' });
  }
  if (policy === 'no') return { handle: open(false), note: null };
  let handle: H;
  let note: string | null = null;
  try {
    handle = open(true);
  } catch (err) {
    if (policy !== 'auto' || !headerRefused(err)) throw err;
    handle = open(false);
    note = `IFF_VNET_HDR refused: ${(err as Error).message}`;
  }
  const granted = handle.offloads;
  if (granted !== null && !segmentationGranted(granted)) {
    note = `the kernel granted ${granted.join(' ') || 'no offloads'} on TUN ${handle.name}, not TSO4 and TSO6`;
    if (policy === 'yes') {
      handle.close();
      throw Object.assign(new Error(note), { code: 'EOPNOTSUPP', syscall: 'ioctl(TUNSETOFFLOAD)' });
    }
  }
  return { handle, note };
}

/**
 * The policy that opens another queue of a device alike. The header
 * belongs to the device, and the open of its first queue sets it: the
 * kernel takes a later queue's open without applying its IFF_VNET_HDR
 * (seen on 6.18), so a queue opened otherwise would expect packets in
 * another format than the device delivers. Once the first queue went
 * without the header, every other queue must too.
 */
export function otherQueuePolicy(policy: OffloadPolicy, vnetHeaderBytes: number): OffloadPolicy {
  return vnetHeaderBytes === 0 ? 'no' : policy;
}
