// Round trips through the real tools: files written by editcap, mergecap,
// tcpdump and dumpcap (captured live in network namespaces made for the
// test) must read back with exactly the packets and times tshark sees.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ChildProcess } from 'node:child_process';
import { openCapture } from '../src/pcap/reader.js';
import { PcapWriter, classicOptionsFor } from '../src/pcap/writer.js';
import { PcapError } from '../src/pcap/errors.js';
import { LINKTYPE, locateL3 } from '../src/pcap/linklayer.js';
import { generateCapture } from '../tools/capture/generate.js';
import type { CaptureRecord } from '../src/pcap/record.js';
import { addNamespace, deleteNamespace, ip, spawnInNamespace, execInNamespace } from '../src/system/index.js';
import { epochText, mustRun, runTool, toHex, tsharkFrames } from './support/pcap-tools.js';
import { PYTHON } from './support/python.js';
import { needs, privileged, tools } from './support/privilege.js';

interface Seen {
  record: Omit<CaptureRecord, 'data'>;
  hex: string;
  family: 4 | 6 | null;
  l3: Uint8Array;
}

async function readSeen(path: string): Promise<{ format: string; records: Seen[] }> {
  const reader = await openCapture(path);
  const records: Seen[] = [];
  const format = reader.format;
  for await (const r of reader) {
    const { ip, offset } = locateL3(r.linkType, r.data);
    const { data, ...record } = r;
    // The family by the version nibble at the located offset: tshark agreeing checks the offset too.
    const version = data[offset] >> 4;
    const family = !ip ? null : version === 4 ? 4 : version === 6 ? 6 : null;
    records.push({ record, hex: toHex(data), family, l3: data.slice(offset) });
  }
  return { format, records };
}

/** Our reading of `path` agrees with tshark's: bytes, times, lengths, and where the IP header is. */
async function assertMatchesTshark(path: string): Promise<Seen[]> {
  const { records } = await readSeen(path);
  const frames = tsharkFrames(path);
  assert.equal(records.length, frames.length, `${path}: record count`);
  assert.ok(records.length > 0, `${path}: no packets`);
  records.forEach((s, i) => {
    const f = frames[i];
    assert.equal(s.hex, f.hex, `${path} frame ${i + 1}: bytes`);
    assert.equal(epochText(s.record), f.epoch, `${path} frame ${i + 1}: time`);
    assert.equal(s.record.originalLength, f.len, `${path} frame ${i + 1}: length`);
    const layers = f.protocols.split(':');
    const expected = layers.includes('ip') ? 4 : layers.includes('ipv6') ? 6 : null;
    assert.equal(s.family, expected, `${path} frame ${i + 1}: family (tshark: ${f.protocols})`);
  });
  return records;
}

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l3dsr-pcapt-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test('editcap and mergecap conversions read back with the same packets', tools('editcap', 'mergecap', 'tshark'), withDir(async (dir) => {
  const orig = join(dir, 'orig.pcap');
  await generateCapture(orig, { packets: 300, seed: 7 });
  const base = await assertMatchesTshark(orig);

  const ng = join(dir, 'a.pcapng');
  mustRun('editcap', ['-F', 'pcapng', orig, ng]);
  const fromNg = await readSeen(ng);
  assert.equal(fromNg.format, 'pcapng');
  assert.deepEqual(fromNg.records.map((s) => [s.hex, epochText(s.record)]), base.map((s) => [s.hex, epochText(s.record)]));
  await assertMatchesTshark(ng);

  const back = join(dir, 'b.pcap');
  mustRun('editcap', ['-F', 'pcap', ng, back]);
  assert.deepEqual((await readSeen(back)).records.map((s) => [s.hex, epochText(s.record)]), base.map((s) => [s.hex, epochText(s.record)]));

  const nano = join(dir, 'c.pcap');
  mustRun('editcap', ['-F', 'nsecpcap', orig, nano]);
  const fromNano = await assertMatchesTshark(nano);
  assert.ok(fromNano.every((s) => s.record.tsResolution === 1e9));

  const nanoNg = join(dir, 'c.pcapng');
  mustRun('editcap', ['-F', 'pcapng', nano, nanoNg]);
  const fromNanoNg = await assertMatchesTshark(nanoNg);
  assert.ok(fromNanoNg.every((s) => s.record.tsResolution === 1e9), 'editcap keeps nanoseconds in the IDB');

  // Our writer turns the nanosecond pcapng back into a nanosecond classic pcap, byte for byte as tshark sees it.
  const rewritten = join(dir, 'd.pcap');
  const reader = await openCapture(nanoNg);
  let writer: PcapWriter | undefined;
  for (let batch = await reader.nextBatch(); batch; batch = await reader.nextBatch()) {
    for (const r of batch) {
      writer ??= await PcapWriter.create(rewritten, classicOptionsFor(r, reader.interfaces));
      writer.write(r);
    }
  }
  await writer?.close();
  await reader.close();
  assert.equal(writer?.precision, 'ns');
  assert.deepEqual(tsharkFrames(rewritten), tsharkFrames(nano));

  // Two interfaces of different link types: readable, but not one classic pcap.
  const raw = join(dir, 'raw.pcap');
  await generateCapture(raw, { packets: 20, seed: 8, linkType: LINKTYPE.RAW, startSeconds: 1_700_000_000 });
  const merged = join(dir, 'merged.pcapng');
  mustRun('mergecap', ['-F', 'pcapng', '-w', merged, orig, raw]);
  const m = await assertMatchesTshark(merged);
  assert.deepEqual([...new Set(m.map((s) => s.record.linkType))].sort(), [LINKTYPE.ETHERNET, LINKTYPE.RAW]);
  const mixedOut = join(dir, 'mixed.pcap');
  const mr = await openCapture(merged);
  let mw: PcapWriter | undefined;
  let written = 0;
  await assert.rejects(
    (async () => {
      for await (const r of mr) {
        mw ??= await PcapWriter.create(mixedOut, classicOptionsFor(r, mr.interfaces));
        mw.write(r);
        written++;
      }
    })(),
    (err: unknown) => err instanceof PcapError && err.reason === 'LINKTYPE_MISMATCH' && err.record === written,
  );
  await mw?.close();
  assert.equal(tsharkFrames(mixedOut).length, written, 'everything before the mismatch is in the output');
}));

// ---- live captures ----

const tag = `l3p${process.pid}`;
const NS_A = `${tag}a`;
const NS_B = `${tag}b`;
const ADDR_A4 = '192.0.2.1';
const ADDR_B4 = '192.0.2.2';
const ADDR_A6 = '2001:db8:c0::1';
const ADDR_B6 = '2001:db8:c0::2';

// Waits until B answers each family (an ICMP port unreachable for a datagram
// to a closed port), so neighbour discovery is done before the captures
// start: an IPv6 neighbour solicitation sent while the veth pair was still
// coming up went unanswered and the datagrams waited past the capture's end.
const WAIT_REACHABLE = `
import socket, sys, time
for addr, family in ((sys.argv[1], socket.AF_INET), (sys.argv[2], socket.AF_INET6)):
    deadline = time.time() + 20
    while True:
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.settimeout(0.5)
        s.connect((addr, 9))
        try:
            s.send(b'ready?')
            s.recv(64)
        except ConnectionRefusedError:
            break
        except socket.timeout:
            if time.time() > deadline:
                sys.exit('no answer from %s' % addr)
        finally:
            s.close()
`;

const SEND_UDP = `
import socket, sys, time
for addr, family in ((sys.argv[1], socket.AF_INET), (sys.argv[2], socket.AF_INET6)):
    s = socket.socket(family, socket.SOCK_DGRAM)
    for i in range(3):
        s.sendto(b'l3dsr pcap test %d' % i, (addr, 9))
        time.sleep(0.1)
`;

async function waitForOutput(child: ChildProcess, pattern: RegExp, what: string): Promise<void> {
  let text = '';
  const ready = new Promise<void>((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      text += chunk.toString();
      if (pattern.test(text)) resolve();
    };
    child.stderr?.on('data', onData);
    child.once('exit', (code) => reject(new Error(`${what} exited (${code}) before it was ready: ${text}`)));
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} not ready after 20 s: ${text}`)), 20_000);
  });
  try {
    await Promise.race([ready, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

/** Polls a capture being written until tshark reads `count` UDP datagrams to `addr` port 9 in it (20 s at most). */
async function waitForDatagrams(path: string, addr: string, count: number): Promise<void> {
  const filter = `udp.dstport == 9 && ipv6.dst == ${addr} && !icmpv6`;
  const deadline = Date.now() + 20_000;
  for (;;) {
    // A file still being written may end inside a record: only the count matters here.
    const seen = runTool('tshark', ['-r', path, '-Y', filter, '-T', 'fields', '-e', 'frame.number']).stdout.split('\n').filter(Boolean).length;
    if (seen >= count) return;
    if (Date.now() > deadline) throw new Error(`${path}: ${seen} of ${count} datagrams to ${addr} captured after 20 s`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

test('tcpdump and dumpcap captures from a namespace read back with the same packets', {
  ...needs(privileged('captures in network namespaces it creates'), tools('tcpdump', 'dumpcap', 'tshark', PYTHON)),
  timeout: 120_000,
}, withDir(async (dir) => {
  const captures: ChildProcess[] = [];
  try {
    await addNamespace(NS_A);
    await addNamespace(NS_B);
    await ip(['link', 'add', NS_A, 'type', 'veth', 'peer', 'name', NS_B], { netns: NS_A });
    await ip(['link', 'set', NS_B, 'netns', NS_B], { netns: NS_A });
    await ip(['addr', 'add', `${ADDR_A4}/24`, 'dev', NS_A], { netns: NS_A });
    await ip(['addr', 'add', `${ADDR_A6}/64`, 'dev', NS_A, 'nodad'], { netns: NS_A });
    await ip(['addr', 'add', `${ADDR_B4}/24`, 'dev', NS_B], { netns: NS_B });
    await ip(['addr', 'add', `${ADDR_B6}/64`, 'dev', NS_B, 'nodad'], { netns: NS_B });
    await ip(['link', 'set', NS_A, 'up'], { netns: NS_A });
    await ip(['link', 'set', NS_B, 'up'], { netns: NS_B });

    await execInNamespace(NS_A, PYTHON, ['-c', WAIT_REACHABLE, ADDR_B4, ADDR_B6]);

    const files = {
      ethernet: join(dir, 'eth.pcap'),
      ethernetNano: join(dir, 'eth-ns.pcap'),
      sll2: join(dir, 'any.pcap'),
      sll: join(dir, 'any-sll.pcap'),
      dumpcap: join(dir, 'dumpcap.pcapng'),
    };
    const starts: [string, string[], RegExp][] = [
      ['tcpdump', ['-i', NS_A, '-U', '-w', files.ethernet], /listening on/],
      ['tcpdump', ['-i', NS_A, '-U', '--time-stamp-precision=nano', '-w', files.ethernetNano], /listening on/],
      ['tcpdump', ['-i', 'any', '-U', '-w', files.sll2], /listening on/],
      ['tcpdump', ['-i', 'any', '-y', 'LINUX_SLL', '-U', '-w', files.sll], /listening on/],
      ['tshark', ['-i', NS_A, '-w', files.dumpcap], /Capturing on/],
    ];
    for (const [cmd, args, ready] of starts) {
      const child = spawnInNamespace(NS_A, cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
      captures.push(child);
      await waitForOutput(child, ready, `${cmd} ${args.join(' ')}`);
    }
    // Three UDP datagrams per family to a closed port, and the ICMP errors back.
    await execInNamespace(NS_A, PYTHON, ['-c', SEND_UDP, ADDR_B4, ADDR_B6]);
    // Stop only once every capture holds the last datagrams sent (IPv6):
    // tcpdump hands packets over in blocks that wait up to its 1 s buffer
    // timeout, so a fixed pause lost the IPv6 ones on a loaded machine.
    for (const path of Object.values(files)) await waitForDatagrams(path, ADDR_B6, 3);
    for (const c of captures) {
      const exited = once(c, 'exit');
      c.kill('SIGINT');
      await exited;
    }
    captures.length = 0;

    const linkTypes: Record<keyof typeof files, number> = {
      ethernet: LINKTYPE.ETHERNET, ethernetNano: LINKTYPE.ETHERNET, sll2: LINKTYPE.LINUX_SLL2, sll: LINKTYPE.LINUX_SLL, dumpcap: LINKTYPE.ETHERNET,
    };
    for (const [name, path] of Object.entries(files) as [keyof typeof files, string][]) {
      const seen = await assertMatchesTshark(path);
      assert.ok(seen.every((s) => s.record.linkType === linkTypes[name]), `${name}: link type ${linkTypes[name]}`);
      if (name === 'ethernetNano') assert.ok(seen.every((s) => s.record.tsResolution === 1e9), 'nanosecond capture');
      // Every datagram to B is found, with B's address at the IP destination offset.
      const toB4 = seen.filter((s) => s.family === 4 && s.l3[9] === 17 && s.l3[22] === 0 && s.l3[23] === 9 && s.l3.subarray(16, 20).join('.') === ADDR_B4);
      const tsharkToB4 = tsharkFrames(path, ['-Y', `udp.dstport == 9 && ip.dst == ${ADDR_B4} && !icmp`]).length;
      assert.ok(tsharkToB4 > 0, `${name}: tshark sees no UDP/IPv4 to ${ADDR_B4}: the capture missed the traffic`);
      assert.equal(toB4.length, tsharkToB4, `${name}: UDP/IPv4 packets to ${ADDR_B4}`);
      const toB6 = seen.filter((s) => s.family === 6 && s.l3[6] === 17 && s.l3[42] === 0 && s.l3[43] === 9 && toHex(s.l3.subarray(24, 40)) === '20010db800c000000000000000000002');
      const tsharkToB6 = tsharkFrames(path, ['-Y', `udp.dstport == 9 && ipv6.dst == ${ADDR_B6} && !icmpv6`]).length;
      assert.ok(tsharkToB6 > 0, `${name}: tshark sees no UDP/IPv6 to ${ADDR_B6}: the capture missed the traffic`);
      assert.equal(toB6.length, tsharkToB6, `${name}: UDP/IPv6 packets to ${ADDR_B6}`);
    }
  } finally {
    for (const c of captures) c.kill('SIGKILL');
    await deleteNamespace(NS_A);
    await deleteNamespace(NS_B);
  }
}));
