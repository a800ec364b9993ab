// Timestamp arithmetic without BigInt on the hot path. A pcapng timestamp is
// a 64-bit count of interface-defined units; a nanosecond count of today's
// date is ~2^61, beyond a double's 53 exact bits, so it is split into
// seconds and fraction by long division over 16-bit limbs, which stays exact
// for any unit up to 2^32 per second.

const TWO_32 = 2 ** 32;
/** Below this high word the 64-bit value fits a double exactly (2^53). */
const EXACT_HIGH_LIMIT = 2 ** 21;
const LIMB = 0x10000;

/** Seconds and fraction of one split timestamp; reused to avoid an allocation per record. */
export interface SplitTimestamp {
  sec: number;
  frac: number;
}

/** Splits `hi·2^32 + lo` units, at `unitsPerSec` units per second, into `out`. */
export function splitTimestamp(hi: number, lo: number, unitsPerSec: number, out: SplitTimestamp): void {
  if (hi < EXACT_HIGH_LIMIT) {
    const total = hi * TWO_32 + lo;
    let sec = Math.floor(total / unitsPerSec);
    let frac = total - sec * unitsPerSec;
    // The division rounds; the remainder tells which way.
    if (frac < 0) {
      sec -= 1;
      frac += unitsPerSec;
    } else if (frac >= unitsPerSec) {
      sec += 1;
      frac -= unitsPerSec;
    }
    out.sec = sec;
    out.frac = frac;
  } else if (unitsPerSec <= TWO_32) {
    // Schoolbook division, most significant limb first; each partial
    // dividend is < unitsPerSec·2^16 <= 2^48, so every step is exact.
    let cur = hi >>> 16;
    const q3 = Math.floor(cur / unitsPerSec);
    cur = (cur - q3 * unitsPerSec) * LIMB + (hi & 0xffff);
    const q2 = Math.floor(cur / unitsPerSec);
    cur = (cur - q2 * unitsPerSec) * LIMB + (lo >>> 16);
    const q1 = Math.floor(cur / unitsPerSec);
    cur = (cur - q1 * unitsPerSec) * LIMB + (lo & 0xffff);
    const q0 = Math.floor(cur / unitsPerSec);
    const rem = cur - q0 * unitsPerSec;
    const quotient = ((q3 * LIMB + q2) * LIMB + q1) * LIMB + q0;
    out.sec = quotient;
    out.frac = rem;
  } else {
    const total = (BigInt(hi) << 32n) | BigInt(lo);
    const units = BigInt(unitsPerSec);
    out.sec = Number(total / units);
    out.frac = Number(total % units);
  }
}

/**
 * Converts a fraction of a second from one unit to another, truncating (as
 * editcap does when it lowers precision). Exact for every pair of decimal or
 * binary units below 2^53 per second.
 */
export function convertFraction(frac: number, fromUnitsPerSec: number, toUnitsPerSec: number): number {
  if (fromUnitsPerSec === toUnitsPerSec) return frac;
  if (toUnitsPerSec % fromUnitsPerSec === 0) return frac * (toUnitsPerSec / fromUnitsPerSec);
  if (fromUnitsPerSec % toUnitsPerSec === 0) return Math.floor(frac / (fromUnitsPerSec / toUnitsPerSec));
  return Number((BigInt(frac) * BigInt(toUnitsPerSec)) / BigInt(fromUnitsPerSec));
}
