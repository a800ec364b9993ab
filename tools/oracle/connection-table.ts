// The connection table of one TUN queue, as a plain model of
// docs/lb.md#connection-table: `capacity / CONNECTION_WAYS` buckets, each
// an exact least-recently-used list of at most CONNECTION_WAYS entries. The
// core's table (assembly/lb-connections.ts) is held to this model entry for entry.

import { bucketOf, CONNECTION_WAYS } from '../../src/lb/connections.js';

interface Entry {
  /** The VIP section and the flow key, as one string: equal ids are the same flow. */
  id: string;
  backend: string;
}

export class ConnectionTableModel {
  readonly buckets: number;
  /** Entries pushed out of a full bucket by a new flow. */
  evictions = 0;
  /** Most recently used first. */
  private readonly sets: Entry[][];

  constructor(readonly capacity: number, readonly seed: number) {
    if (!Number.isInteger(capacity) || capacity < CONNECTION_WAYS || (capacity & (capacity - 1)) !== 0) {
      throw new RangeError(`connection table: capacity ${capacity}, expected a power of two of at least ${CONNECTION_WAYS}`);
    }
    this.buckets = capacity / CONNECTION_WAYS;
    this.sets = Array.from({ length: this.buckets }, () => []);
  }

  get size(): number {
    return this.sets.reduce((n, s) => n + s.length, 0);
  }

  /** The flow's backend, without changing the order (what an ICMP error does). */
  peek(flowKey: Uint8Array, id: string): string | undefined {
    return this.set(flowKey).find((e) => e.id === id)?.backend;
  }

  /** The flow's backend, the entry made the most recently used. */
  get(flowKey: Uint8Array, id: string): string | undefined {
    const set = this.set(flowKey);
    const at = set.findIndex((e) => e.id === id);
    if (at < 0) return undefined;
    const [entry] = set.splice(at, 1);
    set.unshift(entry);
    return entry.backend;
  }

  /** Records the flow's backend as the most recently used entry; a new one in a full bucket evicts the least recently used. */
  put(flowKey: Uint8Array, id: string, backend: string): void {
    const set = this.set(flowKey);
    const at = set.findIndex((e) => e.id === id);
    if (at >= 0) set.splice(at, 1);
    else if (set.length === CONNECTION_WAYS) {
      set.pop();
      this.evictions++;
    }
    set.unshift({ id, backend });
  }

  delete(flowKey: Uint8Array, id: string): void {
    const set = this.set(flowKey);
    const at = set.findIndex((e) => e.id === id);
    if (at >= 0) set.splice(at, 1);
  }

  /** The entries of the flow key's bucket, most recent first (for tests). */
  bucket(flowKey: Uint8Array): readonly { id: string; backend: string }[] {
    return this.set(flowKey).map((e) => ({ ...e }));
  }

  /** Every entry: its bucket, its place there (0: most recent), its id and backend (for tests). */
  entries(): { bucket: number; way: number; id: string; backend: string }[] {
    return this.sets.flatMap((set, bucket) => set.map((e, way) => ({ bucket, way, id: e.id, backend: e.backend })));
  }

  private set(flowKey: Uint8Array): Entry[] {
    return this.sets[bucketOf(flowKey, this.seed, this.buckets)];
  }
}
