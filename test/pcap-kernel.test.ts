// `l3dsr rewrite` on a generated capture, compared byte for byte with what
// the kernel's nftables rewrite makes of the same IP packets; link-layer
// headers must come through untouched.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rewriteCommand } from '../src/cli/rewrite.js';
import { CaptureReader } from '../src/pcap/reader.js';
import { generateCapture } from '../tools/capture/generate.js';
import { locateL3 } from '../src/pcap/linklayer.js';
import { rewriteWithKernel } from './support/kernel-nft.js';
import { privileged } from './support/privilege.js';

async function frames(path: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for await (const rec of await CaptureReader.open(path)) out.push(rec.data.slice());
  return out;
}

describe('pcap mode against the kernel', privileged('runs the kernel reference in a network namespace with TUN devices'), () => {
  it('every rewritten packet of a generated Ethernet capture equals the kernel\'s rewrite', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'l3dsr-pcapk-'));
    try {
      const input = join(dir, 'in.pcap');
      const output = join(dir, 'out.pcap');
      await generateCapture(input, { packets: 1200, seed: 7, ipv6Share: 0.5, markedShare: 0.6, payloadBytes: [0, 1400] });
      const quiet = { stdout: { write: () => true }, stderr: { write: () => true, isTTY: false } };
      const code = await rewriteCommand(['--rule', '1=203.0.113.10', '--rule', '1=2001:db8:203::10', input, output], quiet as never);
      assert.equal(code, 0);
      const ins = await frames(input);
      const outs = await frames(output);
      assert.equal(outs.length, ins.length, 'nothing is dropped from valid traffic');

      const l3 = ins.map((f) => f.subarray(locateL3(1, f).offset));
      const kernel = await rewriteWithKernel(l3, [
        { family: 4, dscp: 1, destination: '203.0.113.10' },
        { family: 6, dscp: 1, destination: '2001:db8:203::10' },
      ]);
      let changed = 0;
      ins.forEach((f, i) => {
        const off = locateL3(1, f).offset;
        assert.deepEqual(outs[i].subarray(0, off), f.subarray(0, off), `frame ${i}: link-layer header changed`);
        const k = kernel[i].output;
        assert.ok(k, `frame ${i}: the kernel emitted nothing (${kernel[i].note})`);
        assert.equal(Buffer.from(outs[i].subarray(off)).toString('hex'), Buffer.from(k).toString('hex'), `frame ${i} differs from the kernel`);
        if (Buffer.compare(outs[i], f) !== 0) changed++;
      });
      assert.ok(changed > 500, `only ${changed} frames were rewritten`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
