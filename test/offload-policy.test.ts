// TunDevice.open's offload policy on its own, over what the addon's
// constructor can give back: the fallbacks the kernel of this machine never
// takes (IFF_VNET_HDR refused, TSO not granted) are reached with handles
// made up to answer as such a kernel does. tun.test.ts and
// offload-tun.test.ts open real devices.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import type { Offload } from '../src/tun/abi.generated.js';
import { openWithOffload, otherQueuePolicy, segmentationGranted, type OffloadHandle, type OffloadPolicy } from '../src/tun/offload-policy.js';

const EVERYTHING: Offload[] = ['csum', 'tso4', 'tso6', 'tso_ecn', 'uso4', 'uso6'];

/** A kernel as the addon reports it: what it grants with the header, or how it refuses the header. */
interface Kernel {
  granted?: Offload[];
  refuseHeader?: { code: string; syscall: string };
}

function opener(kernel: Kernel) {
  const opened: { header: boolean; closed: boolean }[] = [];
  const open = (header: boolean): OffloadHandle => {
    if (header && kernel.refuseHeader) {
      throw Object.assign(new Error(`${kernel.refuseHeader.syscall} on dsr0 failed`), kernel.refuseHeader);
    }
    const record = { header, closed: false };
    opened.push(record);
    return { name: 'dsr0', offloads: header ? kernel.granted ?? EVERYTHING : null, close: () => { record.closed = true; } };
  };
  return { open, opened };
}

const TUNSETIFF_EINVAL = { code: 'EINVAL', syscall: 'ioctl(TUNSETIFF)' };

describe('the offload policy', () => {
  it('no: opens without the header and asks nothing', () => {
    const k = opener({});
    const { handle, note } = openWithOffload('no', k.open);
    assert.equal(handle.offloads, null);
    assert.equal(note, null);
    assert.deepEqual(k.opened, [{ header: false, closed: false }]);
  });

  for (const policy of ['yes', 'auto'] as const) {
    it(`${policy}: with TSO4 and TSO6 granted, the header and nothing to say`, () => {
      const k = opener({ granted: ['csum', 'tso4', 'tso6'] });
      const { handle, note } = openWithOffload(policy, k.open);
      assert.deepEqual(handle.offloads, ['csum', 'tso4', 'tso6']);
      assert.equal(note, null);
      assert.deepEqual(k.opened, [{ header: true, closed: false }]);
    });
  }

  it('auto: the kernel refuses IFF_VNET_HDR (TUNSETIFF or TUNSETVNETHDRSZ, EINVAL): opens again without it, and says why', () => {
    for (const syscall of ['ioctl(TUNSETIFF)', 'ioctl(TUNSETVNETHDRSZ)']) {
      const k = opener({ refuseHeader: { code: 'EINVAL', syscall } });
      const { handle, note } = openWithOffload('auto', k.open);
      assert.equal(handle.offloads, null);
      assert.equal(note, `IFF_VNET_HDR refused: ${syscall} on dsr0 failed`);
      assert.deepEqual(k.opened, [{ header: false, closed: false }]);
    }
  });

  it('auto: any other failure is the real error, and is not tried again', () => {
    for (const refusal of [{ code: 'EBUSY', syscall: 'ioctl(TUNSETIFF)' }, { code: 'EINVAL', syscall: 'open(/dev/net/tun)' }]) {
      const k = opener({ refuseHeader: refusal });
      assert.throws(() => openWithOffload('auto', k.open), refusal);
      assert.deepEqual(k.opened, []);
    }
  });

  it('yes: a refused header is an error, not a fallback', () => {
    const k = opener({ refuseHeader: TUNSETIFF_EINVAL });
    assert.throws(() => openWithOffload('yes', k.open), TUNSETIFF_EINVAL);
    assert.deepEqual(k.opened, []);
  });

  it('yes: without TSO4 and TSO6 the queue is closed again and the open fails with EOPNOTSUPP, saying what was granted', () => {
    for (const granted of [['csum'], ['csum', 'tso4'], ['csum', 'uso4', 'uso6'], []] as Offload[][]) {
      const k = opener({ granted });
      assert.throws(() => openWithOffload('yes', k.open), {
        code: 'EOPNOTSUPP',
        syscall: 'ioctl(TUNSETOFFLOAD)',
        message: `the kernel granted ${granted.join(' ') || 'no offloads'} on TUN dsr0, not TSO4 and TSO6`,
      });
      assert.deepEqual(k.opened, [{ header: true, closed: true }]);
    }
  });

  it('auto: without TSO4 and TSO6 the header stays (it belongs to the device), and the note says what was granted', () => {
    const k = opener({ granted: ['csum', 'uso4', 'uso6'] });
    const { handle, note } = openWithOffload('auto', k.open);
    assert.deepEqual(handle.offloads, ['csum', 'uso4', 'uso6']);
    assert.equal(note, 'the kernel granted csum uso4 uso6 on TUN dsr0, not TSO4 and TSO6');
    assert.deepEqual(k.opened, [{ header: true, closed: false }]);
  });

  it('refuses a policy that is not auto, yes or no, before opening anything', () => {
    for (const bad of [true, false, 'on', undefined]) {
      const k = opener({});
      assert.throws(() => openWithOffload(bad as unknown as OffloadPolicy, k.open), {
        code: 'ERR_INVALID_ARG_VALUE', message: `offload must be 'auto', 'yes' or 'no', got ${String(bad)}`,
      });
      assert.deepEqual(k.opened, []);
    }
  });

  it('segmentation granted means TCP segmentation of both families', () => {
    assert.equal(segmentationGranted(['csum', 'tso4', 'tso6']), true);
    assert.equal(segmentationGranted(EVERYTHING), true);
    assert.equal(segmentationGranted(['csum', 'tso4']), false);
    assert.equal(segmentationGranted(['csum', 'uso4', 'uso6']), false, 'UDP segmentation alone is not what offload = yes asks for');
    assert.equal(segmentationGranted([]), false);
    assert.equal(segmentationGranted(null), false);
  });

  it('the other queues of a device open as the first one ended up: without the header once it went without', () => {
    assert.equal(otherQueuePolicy('auto', 0), 'no');
    assert.equal(otherQueuePolicy('auto', 10), 'auto');
    assert.equal(otherQueuePolicy('yes', 10), 'yes');
    assert.equal(otherQueuePolicy('no', 0), 'no');
  });
});
