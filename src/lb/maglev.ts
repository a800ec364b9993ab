// The Maglev lookup table (Eisenbud et al., "Maglev: A Fast and Reliable
// Software Network Load Balancer", NSDI 2016, section 3.4): an array of M
// slots, M prime, each holding a backend; a flow goes to the backend in slot
// hash(flow) mod M. Each backend fills slots along its own permutation of
// 0..M-1, derived from its address alone, so adding or removing one backend
// moves few slots, and every balancer with the same backends builds a
// byte-identical table. docs/maglev.md specifies it so that another
// implementation reproduces the table; this file is that specification run.

import { LB_EMPTY_SLOT, MAX_LB_BACKENDS } from '../core/abi.generated.js';
import { murmur3 } from './murmur3.js';

/** The paper's choice: a prime near 2^16, about 100 slots per backend for 650 backends. */
export const DEFAULT_TABLE_SIZE = 65537;
/** Small tables only make sense for tests and examples; the config allows the same range. */
export const MIN_TABLE_SIZE = 13;
/** 2^17 - 1, a (Mersenne) prime: 128 slots per backend at MAX_BACKENDS, 256 KiB per VIP. */
export const MAX_TABLE_SIZE = 131071;
/** Backends of one VIP; a slot holds an index below this. */
export const MAX_BACKENDS = MAX_LB_BACKENDS;
/** Weights are 0..MAX_WEIGHT; 0 takes no slot (no new flows). */
export const MAX_WEIGHT = 1000;
/** A slot of a table whose backends all have weight 0: no backend for a new flow. */
export const EMPTY_SLOT = LB_EMPTY_SLOT;

/** Seeds of the two hashes of a backend's address (docs/maglev.md): any fixed pair of different values would do. */
export const OFFSET_SEED = 1;
export const SKIP_SEED = 2;

export interface MaglevBackend {
  /** The address in network byte order: 4 bytes (IPv4) or 16 (IPv6), all of one length. */
  address: Uint8Array;
  /** 0..MAX_WEIGHT. */
  weight: number;
}

/** Orders addresses by their bytes, unsigned, first byte first: the canonical order of a VIP's backends. */
export function compareAddresses(a: Uint8Array, b: Uint8Array): number {
  for (let i = 0; i < Math.min(a.length, b.length); i++) {
    if (a[i] !== b[i]) return a[i] - b[i];
  }
  return a.length - b.length;
}

/** The backends in canonical order (a sorted copy): the order the table's indexes refer to. */
export function canonicalOrder<T extends MaglevBackend>(backends: readonly T[]): T[] {
  return [...backends].sort((a, b) => compareAddresses(a.address, b.address));
}

export function isPrime(n: number): boolean {
  if (!Number.isInteger(n) || n < 2) return false;
  for (let d = 2; d * d <= n; d++) if (n % d === 0) return false;
  return true;
}

/** Where a backend's permutation starts and how it steps: slot j of it is (offset + j * skip) mod size. */
export function permutationOf(address: Uint8Array, size: number): { offset: number; skip: number } {
  return {
    offset: murmur3(address, OFFSET_SEED) % size,
    // 1..size-1: coprime to a prime size, so the walk visits every slot once.
    skip: (murmur3(address, SKIP_SEED) % (size - 1)) + 1,
  };
}

/**
 * Builds the table: slot -> index into `backends`, which must be in
 * canonical order (strictly increasing addresses, so no duplicates), or
 * EMPTY_SLOT everywhere when no backend has a weight.
 *
 * Backends take turns in rounds, in canonical order; in round r (from 1) a
 * backend of weight w takes a turn when floor(r*w/W) > floor((r-1)*w/W),
 * W being the largest weight: w turns every W rounds, evenly spread, so the
 * slots come out in proportion to the weights. A turn claims the next slot
 * of the backend's permutation that is still free. Done when every slot is.
 */
export function buildMaglevTable(backends: readonly MaglevBackend[], size = DEFAULT_TABLE_SIZE): Uint16Array {
  checkInput(backends, size);
  const table = new Uint16Array(size).fill(EMPTY_SLOT);
  const takers = backends.flatMap((b, index) => (b.weight > 0 ? [{ index, weight: b.weight, ...permutationOf(b.address, size), credit: 0 }] : []));
  if (takers.length === 0) return table;
  const maxWeight = Math.max(...takers.map((t) => t.weight));
  let filled = 0;
  for (;;) {
    for (const t of takers) {
      // credit = (r-1)*w mod W before this round: the floor rule above without a multiplication.
      t.credit += t.weight;
      if (t.credit < maxWeight) continue;
      t.credit -= maxWeight;
      let slot = t.offset;
      while (table[slot] !== EMPTY_SLOT) slot = (slot + t.skip) % size;
      table[slot] = t.index;
      t.offset = (slot + t.skip) % size;
      if (++filled === size) return table;
    }
  }
}

/** The slot a flow hash selects. */
export const slotOf = (flowHash: number, size: number): number => (flowHash >>> 0) % size;

function checkInput(backends: readonly MaglevBackend[], size: number): void {
  if (!isPrime(size) || size < MIN_TABLE_SIZE || size > MAX_TABLE_SIZE) {
    throw new RangeError(`Maglev table size ${size}: expected a prime ${MIN_TABLE_SIZE}-${MAX_TABLE_SIZE}`);
  }
  if (backends.length > MAX_BACKENDS) throw new RangeError(`${backends.length} backends: at most ${MAX_BACKENDS}`);
  backends.forEach((b, i) => {
    if (b.address.length !== 4 && b.address.length !== 16) throw new RangeError(`backend ${i}: an address is 4 or 16 bytes, got ${b.address.length}`);
    if (!Number.isInteger(b.weight) || b.weight < 0 || b.weight > MAX_WEIGHT) throw new RangeError(`backend ${i}: weight ${b.weight}, expected 0-${MAX_WEIGHT}`);
    if (i > 0 && (b.address.length !== backends[i - 1].address.length || compareAddresses(backends[i - 1].address, b.address) >= 0)) {
      throw new RangeError(`backend ${i}: backends must be of one family, in canonical order (increasing address bytes), without repeats`);
    }
  });
}
