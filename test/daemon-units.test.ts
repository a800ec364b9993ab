// Pieces of the daemon that need no system: the size of a packet slot.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { slotSizeFor } from '../src/daemon/daemon.js';
import { OFFLOAD_MIN_SLOT_SIZE, VNET_HEADER_BYTES } from '../src/tun/device.js';

const CACHE_LINE = 64;

describe('slot size', () => {
  it('holds the largest packet, in an odd number of cache lines, and no more than two lines beyond', () => {
    for (const offload of ['no', 'auto', 'yes'] as const) {
      for (const mtu of [68, 576, 1280, 1500, 2048, 4000, 9000, 9216, 65535]) {
        const size = slotSizeFor(mtu, offload);
        const need = offload === 'no' ? Math.max(mtu, 2048) : Math.max(OFFLOAD_MIN_SLOT_SIZE, mtu + VNET_HEADER_BYTES);
        const what = `mtu ${mtu}, offload ${offload}: ${size}`;
        assert.ok(size >= need, what);
        assert.equal(size % CACHE_LINE, 0, what);
        assert.equal((size / CACHE_LINE) % 2, 1, `${what}: an even number of cache lines`);
        assert.ok(size - need < 2 * CACHE_LINE, what);
      }
    }
  });

  it('is 65 600 bytes with offload on 1500-byte links, as the README says', () => {
    assert.equal(slotSizeFor(1500, 'auto'), 65_600);
  });
});
