// Timestamp splitting must be exact for 64-bit unit counts (nanoseconds since
// the epoch exceed a double's 53 bits); BigInt arithmetic is the reference.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fc from 'fast-check';
import { convertFraction, splitTimestamp } from '../src/pcap/timestamp.js';

const units = [1, 10, 1000, 1e6, 1e9, 1e12, 1e15, 2 ** 10, 2 ** 20, 2 ** 32, 2 ** 40];

test('splitTimestamp matches BigInt division for any 64-bit count and unit', () => {
  fc.assert(
    fc.property(
      fc.constantFrom(...units).chain((unit) => {
        // Seconds must stay below 2^53 to be exact in a number: the reader promises no more.
        const max = BigInt(unit) * 2n ** 53n - 1n;
        return fc.tuple(fc.constant(unit), fc.bigInt({ min: 0n, max: max < 2n ** 64n - 1n ? max : 2n ** 64n - 1n }));
      }),
      ([unit, total]) => {
        const out = { sec: -1, frac: -1 };
        splitTimestamp(Number(total >> 32n), Number(total & 0xffffffffn), unit, out);
        assert.equal(out.sec, Number(total / BigInt(unit)));
        assert.equal(out.frac, Number(total % BigInt(unit)));
      },
    ),
    { numRuns: 20000 },
  );
});

test('splitTimestamp at the edges of the exact-double range', () => {
  for (const total of [0n, 2n ** 53n - 1n, 2n ** 53n, 2n ** 53n + 1n, 1_700_000_000_999_999_999n, 2n ** 64n - 1n]) {
    for (const unit of [1e6, 1e9]) {
      const out = { sec: 0, frac: 0 };
      splitTimestamp(Number(total >> 32n), Number(total & 0xffffffffn), unit, out);
      assert.equal(BigInt(out.sec) * BigInt(unit) + BigInt(out.frac), total, `${total} / ${unit}`);
      assert.ok(out.frac >= 0 && out.frac < unit);
    }
  }
});

test('convertFraction truncates towards zero and is exact', () => {
  assert.equal(convertFraction(123_456_789, 1e9, 1e6), 123_456);
  assert.equal(convertFraction(999_999, 1e6, 1e9), 999_999_000);
  assert.equal(convertFraction(512, 1024, 1e6), 500_000);
  assert.equal(convertFraction(1, 1024, 1e9), 976_562);
  assert.equal(convertFraction(1023, 1024, 1e6), 999_023);
  fc.assert(
    fc.property(fc.constantFrom(...units.filter((u) => u <= 2 ** 40)), fc.constantFrom(1e6, 1e9), fc.double({ min: 0, max: 1, noNaN: true }), (from, to, f) => {
      const frac = Math.min(from - 1, Math.floor(f * from));
      const expected = (BigInt(frac) * BigInt(to)) / BigInt(from);
      assert.equal(convertFraction(frac, from, to), Number(expected));
    }),
  );
});
