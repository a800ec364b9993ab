// The flow key and flow hash of the balancer (docs/lb.md#flow-hash): which
// bytes of a packet name its flow, and the hash that picks its Maglev slot.
// Every balancer instance must compute the same hash for the same flow, so
// a flow keeps its backend when ECMP moves it to another instance: the seed
// is a constant, not a per-instance secret.

import { LB_FLOW_HASH_SEED } from '../core/abi.generated.js';
import { murmur3 } from './murmur3.js';

export const FLOW_HASH_SEED = LB_FLOW_HASH_SEED;

export interface FlowTuple {
  /** Source and destination addresses, network order, both 4 or both 16 bytes. */
  src: Uint8Array;
  dst: Uint8Array;
  protocol: number;
  /** The transport ports, for a 5-tuple; absent for a 3-tuple. */
  ports?: { src: number; dst: number };
}

/**
 * The key's bytes: source address, destination address, then for a
 * 5-tuple the source and destination ports (big-endian, as on the wire),
 * then the protocol number (one byte). 13 or 9 bytes for IPv4, 37 or 33
 * for IPv6: the length alone tells a 5-tuple from a 3-tuple.
 */
export function flowKey(t: FlowTuple): Uint8Array {
  if (t.src.length !== t.dst.length || (t.src.length !== 4 && t.src.length !== 16)) throw new RangeError('flow key: addresses of 4 or 16 bytes, both of one family');
  const n = t.src.length;
  const key = new Uint8Array(2 * n + (t.ports ? 4 : 0) + 1);
  key.set(t.src, 0);
  key.set(t.dst, n);
  let at = 2 * n;
  if (t.ports) {
    key[at++] = t.ports.src >> 8;
    key[at++] = t.ports.src & 0xff;
    key[at++] = t.ports.dst >> 8;
    key[at++] = t.ports.dst & 0xff;
  }
  key[at] = t.protocol;
  return key;
}

export const flowHash = (key: Uint8Array): number => murmur3(key, FLOW_HASH_SEED);
