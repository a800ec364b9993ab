// `l3dsr rewrite --lb-config`: a generated capture (tools/fuzz/lb-traffic.ts
// in Ethernet frames, an ARP frame among them) balanced by the command, held
// to the reference model (tools/oracle/lb.ts) with every backend up: each
// verdict line names the section, backend, flow key and connection outcome
// the model gives, the output holds every record but the dropped ones, in
// order, with the model's bytes behind the untouched link header.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rewriteCommand, type RewriteIo } from '../src/cli/rewrite.js';
import { lbConfigurationFrom } from '../src/config/load.js';
import { ETHERTYPE } from '../src/pcap/linklayer.js';
import { openCapture } from '../src/pcap/reader.js';
import { arpRequest, DEFAULT_MACS, ethernetFrame } from '../tools/packets/build.js';
import { ARP } from '../tools/packets/layout.js';
import { Rng } from '../tools/packets/rng.js';
import { LbTraffic } from '../tools/fuzz/lb-traffic.js';
import { LbModel } from '../tools/oracle/lb.js';
import { classicFile } from './support/pcap-bytes.js';

const CONFIG = `
[daemon]
connections = 1024

[lb web]
vip = 203.0.113.10
dscp = 1
ports = tcp/80, udp/53, sctp/5000
backends = 198.51.100.2, 198.51.100.3 weight=2, 198.51.100.4 drain
check = none
table-size = 251

[lb web6]
vip = 2001:db8:203::10
dscp = 2
backends = 2001:db8:198::2, 2001:db8:198::3
check = none
table-size = 13
`;

async function run(argv: string[]): Promise<{ status: number; stderr: string }> {
  let stderr = '';
  const io: RewriteIo = { stdout: { write: () => true }, stderr: { write: (t: string) => (stderr += t) } };
  return { status: await rewriteCommand(argv, io), stderr };
}

test('l3dsr rewrite --lb-config balances a capture as the reference model does, every backend up', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-rw-lb-'));
  try {
    const config = join(dir, 'lb.conf');
    writeFileSync(config, CONFIG);
    const vips = lbConfigurationFrom([{ file: config, text: CONFIG }]).vips;
    const traffic = new LbTraffic(new Rng(11), vips, 30);
    const packets = Array.from({ length: 1500 }, () => traffic.next());
    const frames = packets.map((p) => ethernetFrame(p, p.length > 0 && p[0] >> 4 === 6 ? ETHERTYPE.IPV6 : ETHERTYPE.IPV4));
    frames.splice(700, 0, ethernetFrame(arpRequest(DEFAULT_MACS.src, '192.0.2.1', '192.0.2.2'), ARP.ETHERTYPE));
    const input = join(dir, 'in.pcap');
    writeFileSync(input, classicFile({ records: frames.map((data, i) => ({ sec: i, frac: 0, data })) }));
    const output = join(dir, 'out.pcap');
    const verdicts = join(dir, 'verdicts.jsonl');

    const r = await run(['--lb-config', config, '--verdicts', verdicts, input, output]);
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stderr, /\[lb web\]: \d+ packets/);

    // The model with the command's connection table: [daemon] connections entries, its fixed bucket seed (0).
    const model = new LbModel(vips, { connections: 1024, tableSeed: 0 });
    const lines = readFileSync(verdicts, 'utf8').trimEnd().split('\n').map((l) => JSON.parse(l) as Record<string, unknown>);
    assert.equal(lines.length, frames.length);
    const reader = await openCapture(output);
    const written: Uint8Array[] = [];
    for (let b = await reader.nextBatch(); b !== null; b = await reader.nextBatch()) for (const rec of b) written.push(rec.data.slice());
    await reader.close();
    const expectedOut: Uint8Array[] = [];
    let backends = 0;
    frames.forEach((frame, index) => {
      if (index === 700) {
        assert.deepEqual(lines[index], { index, verdict: 'passed', l3: false });
        expectedOut.push(frame);
        return;
      }
      const { output: bytes, ...outcome } = model.process(frame.subarray(14));
      assert.deepEqual(lines[index], { index, ...outcome }, `record ${index}`);
      if (outcome.backend !== undefined) backends++;
      if (outcome.verdict !== 'dropped') expectedOut.push(Uint8Array.from([...frame.subarray(0, 14), ...bytes]));
    });
    assert.ok(backends > 300, `only ${backends} packets balanced`);
    assert.deepEqual(written, expectedOut);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('l3dsr rewrite --lb-config refuses --rule and --config beside it, and a bad [lb] section at its line', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'l3dsr-rw-lb-'));
  try {
    const input = join(dir, 'in.pcap');
    writeFileSync(input, classicFile({ records: [] }));
    const config = join(dir, 'lb.conf');
    writeFileSync(config, CONFIG);
    let r = await run(['--lb-config', config, '--rule', '1=203.0.113.10', input, join(dir, 'out.pcap')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, /--lb-config balances as l3dsr lb does; --rule rewrites as the real server does: give one or the other/);
    const bad = join(dir, 'bad.conf');
    writeFileSync(bad, CONFIG.replace('dscp = 2', 'dscp = 64'));
    r = await run(['--lb-config', bad, input, join(dir, 'out.pcap')]);
    assert.equal(r.status, 2);
    assert.match(r.stderr, new RegExp(`${bad}:\\d+: .*dscp`));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
