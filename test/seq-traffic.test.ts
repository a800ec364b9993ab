// account(): the soak's judge. Given when each numbered datagram was sent,
// what the sink received and the down windows, it must call each datagram
// delivered, duplicated, damaged or lost, and put each loss inside a window
// (or in flight when it began) or outside all of them.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { account, type Received } from './support/seq-traffic.js';

const MS = 1e6;
/** Datagram n sent at n ms. */
const sentEveryMs = (count: number) => Float64Array.from({ length: count }, (_, n) => n * MS);
const got = (seqs: number[], flags = 0): Received[] => seqs.map((seq) => ({ seq, address: seq % 4, flags, at: seq * MS + 0.2 * MS }));
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

describe('account', () => {
  it('everything delivered once: nothing lost, latency from send to arrival', () => {
    const a = account(sentEveryMs(100), got(range(0, 99)), [], 0);
    assert.deepEqual({ ...a, latency: undefined }, {
      sent: 100, sendErrors: 0, delivered: 100, duplicates: 0, damaged: 0, lost: 0, lostInWindows: 0, lostInFlight: 0, inFlightMax: 0, lostOutside: [], windows: [], latency: undefined,
    });
    assert.deepEqual(a.latency, { p50: 0.2 * MS, p99: 0.2 * MS, max: 0.2 * MS });
  });

  it('losses inside a window count there, and so does the unbroken run of losses just before it; others are runs outside', () => {
    // Lost: 7-9 (running on into the window at 10-20 ms), 10-20 (inside), 40-42 and 60 (outside).
    const lost = new Set([7, 8, 9, ...range(10, 20), 40, 41, 42, 60]);
    const a = account(sentEveryMs(100), got(range(0, 99).filter((n) => !lost.has(n))), [{ start: 10 * MS, end: 20 * MS }], 5 * MS);
    assert.equal(a.lost, lost.size);
    assert.equal(a.lostInWindows, 14);
    assert.equal(a.lostInFlight, 3);
    assert.equal(a.inFlightMax, 3 * MS);
    assert.deepEqual(a.lostOutside, [{ first: 40, last: 42, sentAt: 40 * MS }, { first: 60, last: 60, sentAt: 60 * MS }]);
    assert.deepEqual(a.windows, [{ lost: 14, lossSpan: 13 * MS }]);
  });

  it('a loss just before a window with a delivered datagram after it was not in flight: outside', () => {
    const a = account(sentEveryMs(30), got(range(0, 29).filter((n) => n !== 8 && !(n >= 10 && n <= 20))), [{ start: 10 * MS, end: 20 * MS }], 5 * MS);
    assert.deepEqual(a.lostOutside, [{ first: 8, last: 8, sentAt: 8 * MS }]);
    assert.equal(a.lostInFlight, 0);
    assert.deepEqual(a.windows, [{ lost: 11, lossSpan: 10 * MS }]);
  });

  it('a run of losses reaching into a window but starting longer before it than a datagram can be in flight: outside', () => {
    const a = account(sentEveryMs(30), got(range(0, 29).filter((n) => n < 2 || n > 20)), [{ start: 10 * MS, end: 20 * MS }], 5 * MS);
    assert.deepEqual(a.lostOutside, [{ first: 2, last: 9, sentAt: 2 * MS }]);
    assert.deepEqual(a.windows, [{ lost: 11, lossSpan: 10 * MS }]);
  });

  it('a window that lost nothing', () => {
    const a = account(sentEveryMs(30), got(range(0, 29).filter((n) => n !== 4)), [{ start: 10 * MS, end: 20 * MS }], 5 * MS);
    assert.deepEqual(a.lostOutside, [{ first: 4, last: 4, sentAt: 4 * MS }]);
    assert.deepEqual(a.windows, [{ lost: 0, lossSpan: 0 }]);
  });

  it('each loss goes to its own window, whatever order the windows are given in', () => {
    const a = account(sentEveryMs(100), got(range(0, 99).filter((n) => !(n === 15 || n === 70 || n === 71))), [
      { start: 65 * MS, end: 75 * MS }, { start: 10 * MS, end: 20 * MS },
    ], 0);
    assert.deepEqual(a.windows, [{ lost: 2, lossSpan: 1 * MS }, { lost: 1, lossSpan: 0 }]);
    assert.deepEqual(a.lostOutside, []);
  });

  it('a second copy is a duplicate; a damaged one does not count as delivered', () => {
    const a = account(sentEveryMs(10), [...got(range(0, 8)), ...got([3]), ...got([9], 8)], [], 0);
    assert.equal(a.delivered, 9);
    assert.equal(a.duplicates, 1);
    assert.equal(a.damaged, 1);
    assert.deepEqual(a.lostOutside, [{ first: 9, last: 9, sentAt: 9 * MS }]);
  });

  it('a datagram with a number that was never sent is damaged; one whose send failed is neither sent nor lost', () => {
    const sent = sentEveryMs(10);
    sent[5] = NaN;
    const a = account(sent, [...got(range(0, 9).filter((n) => n !== 5)), ...got([12])], [], 0);
    assert.equal(a.sent, 9);
    assert.equal(a.sendErrors, 1);
    assert.equal(a.lost, 0);
    assert.equal(a.damaged, 1);
  });
});
