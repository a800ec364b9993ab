// The connection table's shape (docs/lb.md#connection-table), shared by the
// configuration, the reference model (tools/oracle/connection-table.ts) and
// the core that holds it (assembly/lb-connections.ts): a power of two of buckets of CONNECTION_WAYS
// entries each, a bucket chosen by a hash of the flow key, least recently
// used first out. Set-associative so that a lookup touches one cache line's
// worth of entries and the eviction order is exact and cheap.

import { LB_CONNECTION_WAYS } from '../core/abi.generated.js';
import { murmur3 } from './murmur3.js';

export const CONNECTION_WAYS = LB_CONNECTION_WAYS;
/** Entries per TUN queue: the [daemon] `connections` setting, a power of two. */
export const DEFAULT_CONNECTIONS = 1 << 16;
export const MIN_CONNECTIONS = 1 << 10;
export const MAX_CONNECTIONS = 1 << 24;

/**
 * The bucket of a flow key: murmur3 of the key with a seed of the table's
 * own, which need not be the same on every balancer (it changes where
 * entries sit, never which backend a flow gets), so each table may pick a
 * random one and nobody outside can aim flows at one bucket.
 */
export const bucketOf = (key: Uint8Array, seed: number, buckets: number): number => murmur3(key, seed) & (buckets - 1);
