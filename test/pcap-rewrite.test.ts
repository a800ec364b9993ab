// `l3dsr rewrite` end to end: hand-built captures through the command, the
// output checked by tshark with checksum validation on, the verdict file
// line by line, and the error exits with their positions and flushed output.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, linkSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { rewriteCommand, type RewriteIo } from '../src/cli/rewrite.js';
import { createRewriter } from '../src/core/rewriter.js';
import { ruleText } from '../src/core/rules.js';
import { DEFAULT_MACS, arpRequest, buildPacket, ethernetFrame, filler, sll2Frame, sllFrame, tcp, udp, type PacketSpec } from '../tools/packets/build.js';
import { ARP, PROTO } from '../tools/packets/layout.js';
import { ETHERTYPE, LINKTYPE, locateL3 } from '../src/pcap/linklayer.js';
import { openCapture } from '../src/pcap/reader.js';
import { MAX_SECTION_INTERFACES } from '../src/pcap/pcapng.js';
import { ByteBuilder, classicFile, classicRecordOffset, concat, epb, idb, shb, type ClassicRecordSpec } from './support/pcap-bytes.js';
import { runTool, toHex } from './support/pcap-tools.js';
import { tools } from './support/privilege.js';

const VIP4 = '203.0.113.10';
const VIP6 = '2001:db8:203::10';
const RULES = ['--rule', `1=${VIP4}`, '--rule', `1=${VIP6}`];
const RIP4 = '198.51.100.2';
const RIP6 = '2001:db8:198::2';
const CLIENT4 = '192.0.2.1';
const CLIENT6 = '2001:db8:192::1';

interface Run {
  status: number;
  stdout: string;
  stderr: string;
}

async function run(argv: string[], tty = false): Promise<Run> {
  let stdout = '';
  let stderr = '';
  const io: RewriteIo = {
    stdout: { write: (t: string) => (stdout += t) },
    stderr: { write: (t: string) => (stderr += t), isTTY: tty },
  };
  const status = await rewriteCommand(argv, io);
  return { status, stdout, stderr };
}

function withDir(fn: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l3dsr-rw-'));
    try {
      await fn(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

/** A packet from the client to the real server, marked DSCP 1, with a payload that `seed` varies. */
function marked(family: 4 | 6, protocol: 'tcp' | 'udp', seed: number, payloadLength = 20 + seed * 7): PacketSpec {
  const body = filler(payloadLength, seed);
  return {
    src: family === 4 ? CLIENT4 : CLIENT6, dst: family === 4 ? RIP4 : RIP6, dscp: 1, id: seed, flowLabel: seed,
    protocol: protocol === 'tcp' ? PROTO.TCP : PROTO.UDP, transport: protocol === 'tcp' ? tcp(body, [40000, 80]) : udp(body, [40000, 80]),
  };
}

const familyOf = (spec: PacketSpec): 4 | 6 => (spec.src.includes(':') ? 6 : 4);

/** A marked IPv4 "TCP" packet with only 10 bytes of L4: a rule matches, but it cannot be fixed. */
const truncatedTcp = (): Uint8Array => buildPacket({ ...marked(4, 'udp', 9, 2), protocol: PROTO.TCP });

/** IPv4 with IHL 4: not parseable. */
function badHeader(): Uint8Array {
  const p = buildPacket(marked(4, 'udp', 10));
  p[0] = 0x44;
  return p;
}

const ARP_BODY = arpRequest(DEFAULT_MACS.src, CLIENT4, RIP4);

interface Case {
  frame: Uint8Array;
  verdict: string;
  reason?: string;
  rule?: string;
  l3?: false;
  /** For rewritten packets: the L3 packet expected in the output. */
  expected?: Uint8Array;
}

function rewrittenCase(spec: PacketSpec, wrap: (l3: Uint8Array) => Uint8Array): Case {
  const vip = familyOf(spec) === 4 ? VIP4 : VIP6;
  return { frame: wrap(buildPacket(spec)), verdict: 'rewritten', rule: `1=${vip}`, expected: buildPacket({ ...spec, dst: vip }) };
}

const eth = (family: 4 | 6) => (l3: Uint8Array) => ethernetFrame(l3, family);
const qinq = (family: 4 | 6) => (l3: Uint8Array) => ethernetFrame(l3, family, [[ETHERTYPE.SERVICE_VLAN, 10], [ETHERTYPE.VLAN, 20]]);

function ethernetCases(): Case[] {
  return [
    rewrittenCase(marked(4, 'tcp', 1), eth(4)),
    rewrittenCase(marked(4, 'udp', 2), qinq(4)),
    rewrittenCase(marked(6, 'tcp', 3), eth(6)),
    rewrittenCase(marked(6, 'udp', 4), qinq(6)),
    { frame: ethernetFrame(buildPacket({ ...marked(4, 'tcp', 5), dscp: 0, dst: '198.51.100.3' }), 4), verdict: 'passed' },
    { frame: ethernetFrame(buildPacket({ ...marked(6, 'udp', 6), dscp: 2 }), 6), verdict: 'passed' },
    { frame: ethernetFrame(ARP_BODY, ARP.ETHERTYPE), verdict: 'passed', l3: false },
    { frame: ethernetFrame(truncatedTcp(), 4), verdict: 'dropped', reason: 'tcp-truncated', rule: `1=${VIP4}` },
    { frame: ethernetFrame(badHeader(), 4, [[ETHERTYPE.VLAN, 5]]), verdict: 'malformed', reason: 'ipv4-header' },
    rewrittenCase(marked(4, 'udp', 11), eth(4)),
  ];
}

function recordsOf(cases: Case[]): ClassicRecordSpec[] {
  return cases.map((c, i) => ({ sec: 1_700_000_000 + i, frac: 1000 * i + 1, data: c.frame }));
}

const CHECKSUM_ARGS = ['-o', 'ip.check_checksum:TRUE', '-o', 'udp.check_checksum:TRUE', '-o', 'tcp.check_checksum:TRUE'];

/** Per output frame: tshark's checksum verdicts (1 good, 0 bad, empty n/a) and destination. */
function tsharkChecks(path: string): { statuses: string[]; dst: string }[] {
  const r = runTool('tshark', ['-r', path, ...CHECKSUM_ARGS, '-T', 'fields', '-E', 'separator=|',
    '-e', 'ip.checksum.status', '-e', 'tcp.checksum.status', '-e', 'udp.checksum.status', '-e', 'ip.dst', '-e', 'ipv6.dst']);
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stderr, '', 'tshark complained');
  return r.stdout.trim().split('\n').filter((l) => l !== '').map((line) => {
    const [ip, tcp, udp, dst4, dst6] = line.split('|');
    return { statuses: [ip, tcp, udp].filter((s) => s !== ''), dst: dst4 || dst6 };
  });
}

async function readRecords(path: string): Promise<{ linkType: number; tsSec: number; tsFrac: number; data: Uint8Array }[]> {
  const out = [];
  for await (const r of await openCapture(path)) out.push({ linkType: r.linkType, tsSec: r.tsSec, tsFrac: r.tsFrac, data: r.data.slice() });
  return out;
}

function verdictLines(path: string): Record<string, unknown>[] {
  return readFileSync(path, 'utf8').trim().split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);
}

test('rewrite: marked packets get the VIP with valid checksums, dropped ones are gone, the rest is untouched', tools('tshark'), withDir(async (dir) => {
  const cases = ethernetCases();
  const input = join(dir, 'in.pcap');
  const output = join(dir, 'out.pcap');
  const verdicts = join(dir, 'verdicts.jsonl');
  writeFileSync(input, classicFile({ records: recordsOf(cases), snapLength: 65535 }));

  const r = await run([...RULES, '--verdicts', verdicts, input, output]);
  assert.equal(r.status, 0, r.stderr);

  const kept = cases.filter((c) => c.verdict !== 'dropped');
  const out = await readRecords(output);
  assert.equal(out.length, kept.length);
  const inputTimes = recordsOf(cases).filter((_, i) => cases[i].verdict !== 'dropped');
  out.forEach((rec, i) => {
    const c = kept[i];
    assert.equal(rec.linkType, LINKTYPE.ETHERNET);
    assert.equal(rec.tsSec, inputTimes[i].sec);
    assert.equal(rec.tsFrac, inputTimes[i].frac);
    if (c.expected) {
      const { offset } = locateL3(LINKTYPE.ETHERNET, c.frame);
      assert.equal(toHex(rec.data.subarray(0, offset)), toHex(c.frame.subarray(0, offset)), `record ${i}: link layer kept`);
      assert.equal(toHex(rec.data.subarray(offset)), toHex(c.expected), `record ${i}: rewritten packet`);
    } else {
      assert.equal(toHex(rec.data), toHex(c.frame), `record ${i}: ${c.verdict} packet unchanged`);
    }
  });

  const checks = tsharkChecks(output);
  assert.equal(checks.length, kept.length);
  checks.forEach((c, i) => {
    if (kept[i].verdict === 'malformed' || kept[i].l3 === false) return;
    assert.ok(c.statuses.length > 0 && c.statuses.every((s) => s === '1'), `frame ${i + 1}: checksums ${c.statuses}`);
    if (kept[i].verdict === 'rewritten') assert.ok(c.dst === VIP4 || c.dst === VIP6, `frame ${i + 1}: destination ${c.dst}`);
  });

  const lines = verdictLines(verdicts);
  assert.deepEqual(lines, cases.map((c, index) => ({
    index, verdict: c.verdict,
    ...(c.l3 === false ? { l3: false } : {}),
    ...(c.reason ? { reason: c.reason } : {}),
    ...(c.rule ? { rule: c.rule } : {}),
  })));

  assert.match(r.stderr, /10 records from .*in\.pcap, 9 written to .*out\.pcap/);
  assert.match(r.stderr, /rewritten\s+5\n/);
  assert.match(r.stderr, /passed\s+3 \(1 not IP\)/);
  assert.match(r.stderr, /malformed\s+1\b/);
  assert.match(r.stderr, /dropped\s+1\b/);
  assert.match(r.stderr, /rule 1=203\.0\.113\.10: 3 packets/);
  assert.match(r.stderr, /rule 1=2001:db8:203::10: 2 packets/);
  assert.match(r.stderr, /dropped tcp-truncated: 1/);
  assert.match(r.stderr, /malformed ipv4-header: 1/);
  assert.doesNotMatch(r.stderr, /\r/, 'no progress display when stderr is not a TTY');
}));

test('rewrite: every supported link type keeps its header and link type', tools('tshark'), withDir(async (dir) => {
  const sll = (family: 4 | 6) => (l3: Uint8Array) => sllFrame(l3, family);
  const sll2 = (family: 4 | 6) => (l3: Uint8Array) => sll2Frame(l3, family);
  const bare = () => (l3: Uint8Array) => l3;
  const kinds: [number, (f: 4 | 6) => (l3: Uint8Array) => Uint8Array, (4 | 6)[]][] = [
    [LINKTYPE.ETHERNET, qinq, [4, 6]],
    [LINKTYPE.LINUX_SLL, sll, [4, 6]],
    [LINKTYPE.LINUX_SLL2, sll2, [4, 6]],
    [LINKTYPE.RAW, bare, [4, 6]],
    [LINKTYPE.RAW_DLT12, bare, [4, 6]],
    [LINKTYPE.IPV4, bare, [4]],
    [LINKTYPE.IPV6, bare, [6]],
  ];
  for (const [linkType, wrap, families] of kinds) {
    const cases = families.flatMap((f, k) => [rewrittenCase(marked(f, 'tcp', 20 + k), wrap(f)), rewrittenCase(marked(f, 'udp', 30 + k), wrap(f))]);
    const input = join(dir, `in-${linkType}.pcap`);
    const output = join(dir, `out-${linkType}.pcap`);
    writeFileSync(input, classicFile({ linkType, nano: true, records: recordsOf(cases) }));
    const r = await run([...RULES, '--quiet', input, output]);
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stderr, '', '--quiet prints no summary');
    const out = await readRecords(output);
    assert.equal(out.length, cases.length);
    out.forEach((rec, i) => {
      assert.equal(rec.linkType, linkType);
      const header = cases[i].frame.length - cases[i].expected!.length;
      assert.equal(toHex(rec.data), toHex(concat(cases[i].frame.subarray(0, header), cases[i].expected!)), `link type ${linkType} record ${i}`);
    });
    if (linkType !== LINKTYPE.RAW_DLT12) {
      // tshark knows DLT 12 only as a pcap-file link type on some platforms; the others it dissects.
      const checks = tsharkChecks(output);
      assert.ok(checks.every((c) => c.statuses.every((s) => s === '1') && (c.dst === VIP4 || c.dst === VIP6)), `link type ${linkType}: ${JSON.stringify(checks)}`);
    }
  }
}));

test('rewrite: a packet the link layer calls IP gets the core\'s verdict and bytes under every link type, whatever its version nibble', withDir(async (dir) => {
  // The daemon's core sees bare IP packets (a TUN without protocol information) and
  // decides from the version nibble alone; the offline mode must agree byte for byte.
  const core = await createRewriter({ rules: [`1=${VIP4}`, `1=${VIP6}`] });
  const withVersion = (p: Uint8Array, version: number): Uint8Array => {
    const q = p.slice();
    q[0] = (version << 4) | (q[0] & 0x0f);
    return q;
  };
  const v4 = buildPacket(marked(4, 'udp', 50));
  const v6 = buildPacket(marked(6, 'tcp', 51));
  const odd = [withVersion(v4, 5), withVersion(v4, 0), withVersion(v6, 5), withVersion(v6, 0), withVersion(v4, 15)];
  const sll = (etherType: number) => (l3: Uint8Array) => sllFrame(l3, etherType);
  const sll2 = (etherType: number) => (l3: Uint8Array) => sll2Frame(l3, etherType);
  const bare = (l3: Uint8Array) => l3;
  const kinds: [number, string, (l3: Uint8Array) => Uint8Array, Uint8Array[]][] = [
    [LINKTYPE.ETHERNET, 'IPv4 EtherType', (l3) => ethernetFrame(l3, 4), [...odd, v6]],
    [LINKTYPE.ETHERNET, 'IPv6 EtherType behind QinQ', (l3) => ethernetFrame(l3, 6, [[ETHERTYPE.SERVICE_VLAN, 10], [ETHERTYPE.VLAN, 20]]), [...odd, v4]],
    [LINKTYPE.LINUX_SLL, 'SLL, IPv4 protocol', sll(ETHERTYPE.IPV4), [...odd, v6]],
    [LINKTYPE.LINUX_SLL, 'SLL, IPv6 protocol', sll(ETHERTYPE.IPV6), odd],
    [LINKTYPE.LINUX_SLL2, 'SLL2, IPv4 protocol', sll2(ETHERTYPE.IPV4), odd],
    [LINKTYPE.LINUX_SLL2, 'SLL2, IPv6 protocol', sll2(ETHERTYPE.IPV6), [...odd, v4]],
    [LINKTYPE.RAW, 'RAW', bare, [...odd, new Uint8Array(0)]],
    [LINKTYPE.RAW_DLT12, 'RAW (DLT 12)', bare, odd],
    [LINKTYPE.RAW_DLT14, 'RAW (DLT 14)', bare, odd],
    [LINKTYPE.IPV4, 'IPV4', bare, [...odd, v6]],
    [LINKTYPE.IPV6, 'IPV6', bare, [...odd, v4]],
  ];
  for (const [linkType, name, wrap, packets] of kinds) {
    const frames = packets.map(wrap);
    const input = join(dir, 'in.pcap');
    const output = join(dir, 'out.pcap');
    const verdicts = join(dir, 'v.jsonl');
    writeFileSync(input, classicFile({ linkType, records: frames.map((data, i) => ({ sec: 1_700_000_000 + i, frac: i, data })) }));
    const r = await run([...RULES, '--quiet', '--verdicts', verdicts, input, output]);
    assert.equal(r.status, 0, `${name}: ${r.stderr}`);

    const expectedLines: Record<string, unknown>[] = [];
    const expectedFrames: string[] = [];
    packets.forEach((p, index) => {
      const bytes = p.slice();
      const result = core.rewrite(bytes);
      if (p[0] >> 4 !== 4 && p[0] >> 4 !== 6) {
        assert.deepEqual(result, { verdict: 'malformed', reason: p.length === 0 ? 'too-short' : 'bad-version' }, 'what the daemon\'s core says');
      }
      expectedLines.push({
        index, verdict: result.verdict,
        ...(result.reason ? { reason: result.reason } : {}),
        ...(result.rule !== undefined ? { rule: ruleText(core.rules[result.rule]) } : {}),
      });
      const frame = frames[index];
      if (result.verdict !== 'dropped') expectedFrames.push(toHex(concat(frame.subarray(0, frame.length - p.length), bytes)));
    });
    assert.deepEqual(verdictLines(verdicts), expectedLines, `${name}: verdicts`);
    assert.deepEqual((await readRecords(output)).map((rec) => toHex(rec.data)), expectedFrames, `${name}: bytes out`);
  }
}));

test('rewrite: pcapng with nanosecond timestamps becomes a nanosecond pcap; an empty capture a valid empty one', tools('tshark', 'capinfos'), withDir(async (dir) => {
  const spec = marked(6, 'udp', 40);
  const input = join(dir, 'in.pcapng');
  writeFileSync(input, concat(shb(), idb({ linkType: 1, tsresol: 9 }), epb({ iface: 0, ts: 1_700_000_000_123_456_789n, data: ethernetFrame(buildPacket(spec), 6) })));
  const output = join(dir, 'out.pcap');
  assert.equal((await run([...RULES, input, output])).status, 0);
  const capinfos = runTool('capinfos', ['-t', output]);
  assert.match(capinfos.stdout, /nanosecond pcap/);
  const [rec] = await readRecords(output);
  assert.equal(rec.tsFrac, 123_456_789);
  assert.deepEqual(tsharkChecks(output), [{ statuses: ['1'], dst: VIP6 }]);

  const empty = join(dir, 'empty.pcap');
  writeFileSync(empty, classicFile({ linkType: 113, records: [] }));
  const emptyOut = join(dir, 'empty-out.pcap');
  const r = await run([...RULES, empty, emptyOut]);
  assert.equal(r.status, 0, r.stderr);
  const reader = await openCapture(emptyOut);
  assert.equal(reader.interfaces[0].linkType, 113);
  assert.equal(await reader.nextBatch(), null);
  await reader.close();
}));

test('rewrite: rules from --config join the --rule ones', tools('tshark'), withDir(async (dir) => {
  const config = join(dir, 'l3dsr.conf');
  writeFileSync(config, `[daemon]\ntun = dsr0\n\n[vips]\n${VIP6} = 1\n\n[rule web]\ndscp = 3\ndestination = 203.0.113.30\n`);
  const cases = [
    rewrittenCase(marked(4, 'udp', 1), eth(4)),
    rewrittenCase(marked(6, 'tcp', 2), eth(6)),
    { ...rewrittenCase({ ...marked(4, 'tcp', 3), dscp: 3 }, eth(4)), expected: buildPacket({ ...marked(4, 'tcp', 3), dscp: 3, dst: '203.0.113.30' }) },
  ];
  const input = join(dir, 'in.pcap');
  writeFileSync(input, classicFile({ records: recordsOf(cases) }));
  const output = join(dir, 'out.pcap');
  const verdicts = join(dir, 'v.jsonl');
  const r = await run(['--rule', `1=${VIP4}`, '--config', config, '--verdicts', verdicts, input, output]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(verdictLines(verdicts).map((l) => l.rule), [`1=${VIP4}`, `1=${VIP6}`, '3=203.0.113.30']);
  const out = await readRecords(output);
  out.forEach((rec, i) => assert.equal(toHex(rec.data.subarray(14)), toHex(cases[i].expected!), `record ${i}`));
  assert.deepEqual(tsharkChecks(output).map((c) => c.dst), [VIP4, VIP6, '203.0.113.30']);
}));

test('rewrite: a frame larger than any IP packet is reported malformed and written unchanged', withDir(async (dir) => {
  // An IPv4 header followed by 70000 bytes: more than an IP packet can be, so more than a slot holds.
  const huge = new Uint8Array(70_000);
  huge.set(buildPacket(marked(4, 'udp', 1)));
  const input = join(dir, 'huge.pcap');
  writeFileSync(input, classicFile({ linkType: LINKTYPE.RAW, snapLength: 262144, records: [{ sec: 1, frac: 0, data: huge }] }));
  const output = join(dir, 'out.pcap');
  const verdicts = join(dir, 'v.jsonl');
  const r = await run([...RULES, '--verdicts', verdicts, input, output]);
  assert.equal(r.status, 0, r.stderr);
  assert.deepEqual(verdictLines(verdicts), [{ index: 0, verdict: 'malformed', reason: 'slot-overflow' }]);
  const [rec] = await readRecords(output);
  assert.ok(Buffer.from(rec.data).equals(huge), 'written unchanged');
}));

test('rewrite: a truncated input exits 1 naming offset and record, with everything before it written and flushed', tools('tshark'), withDir(async (dir) => {
  const cases = ethernetCases().slice(0, 4);
  const records = recordsOf(cases);
  const good = classicFile({ records });
  const input = join(dir, 'cut.pcap');
  writeFileSync(input, concat(good, new ByteBuilder().u32(1).u32(0).u32(200).u32(200).bytes(filler(50, 1)).build()));
  const output = join(dir, 'out.pcap');
  const verdicts = join(dir, 'v.jsonl');
  const r = await run([...RULES, '--verdicts', verdicts, input, output]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`file ends inside a record's data.*byte offset ${good.length}, record index 4\\)`));
  assert.match(r.stderr, /the 4 records before it are in/);
  const checks = tsharkChecks(output);
  assert.equal(checks.length, 4);
  assert.ok(checks.every((c) => c.dst === VIP4 || c.dst === VIP6));
  assert.deepEqual(verdictLines(verdicts).map((l) => l.index), [0, 1, 2, 3]);
}));

test('rewrite: a big batch broken off in the middle writes every record before the damage', tools('tshark'), withDir(async (dir) => {
  // More records than one batch, then a record claiming more than the snap length.
  const specs = Array.from({ length: 600 }, (_, i) => marked(i % 2 === 0 ? 4 : 6, i % 3 === 0 ? 'udp' : 'tcp', i % 50));
  const records: ClassicRecordSpec[] = specs.map((s, i) => ({ sec: 1_700_000_000, frac: i, data: ethernetFrame(buildPacket(s), familyOf(s)) }));
  records.push({ sec: 1, frac: 0, data: filler(40, 1), capturedLength: 70000 });
  const input = join(dir, 'bad.pcap');
  writeFileSync(input, classicFile({ records, snapLength: 65535 }));
  const output = join(dir, 'out.pcap');
  const r = await run([...RULES, input, output]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, new RegExp(`captured length 70000 exceeds the file's snap length 65535 .*byte offset ${classicRecordOffset(records, 600)}, record index 600\\)`));
  const checks = tsharkChecks(output);
  assert.equal(checks.length, 600);
  assert.ok(checks.every((c) => c.statuses.every((s) => s === '1') && (c.dst === VIP4 || c.dst === VIP6)));
}));

test('rewrite: unknown link type, and pcapng interfaces of two link types, exit 1 with the record position', tools('tshark'), withDir(async (dir) => {
  const input = join(dir, 'usb.pcap');
  writeFileSync(input, classicFile({ linkType: 189, records: [{ sec: 1, frac: 0, data: filler(64, 1) }] }));
  const r = await run([...RULES, input, join(dir, 'o1.pcap')]);
  assert.equal(r.status, 1);
  assert.match(r.stderr, /link type 189 \(USB_LINUX\) is not supported.*byte offset 24, record index 0\)/);

  const v4 = ethernetFrame(buildPacket(marked(4, 'udp', 1)), 4);
  const raw = buildPacket(marked(4, 'udp', 2));
  const blocks = [shb(), idb({ linkType: 1 }), idb({ linkType: 101 }), epb({ iface: 0, ts: 1n, data: v4 }), epb({ iface: 1, ts: 2n, data: raw })];
  const mixed = join(dir, 'mixed.pcapng');
  writeFileSync(mixed, concat(...blocks));
  const out = join(dir, 'o2.pcap');
  const m = await run([...RULES, mixed, out]);
  assert.equal(m.status, 1);
  const offset = blocks.slice(0, 4).reduce((n, b) => n + b.length, 0);
  assert.match(m.stderr, new RegExp(`link type 101 \\(RAW\\) cannot go into a classic pcap of link type 1.*byte offset ${offset}, record index 1\\)`));
  assert.deepEqual(tsharkChecks(out).map((c) => c.dst), [VIP4]);
}));

test('rewrite: a pcapng of 130 000 interface blocks stops at the cap with its position, instead of overflowing the stack', withDir(async (dir) => {
  const one = idb({ linkType: LINKTYPE.ETHERNET, snapLength: 1500 });
  const count = 130_000;
  const idbs = new Uint8Array(one.length * count);
  for (let i = 0; i < count; i++) idbs.set(one, i * one.length);
  const input = join(dir, 'in.pcapng');
  const out = join(dir, 'out.pcap');
  writeFileSync(input, concat(shb(), idbs, epb({ iface: 0, ts: 1n, data: ethernetFrame(buildPacket(marked(4, 'udp', 60)), 4) })));
  const r = await run([...RULES, input, out]);
  assert.equal(r.status, 1, r.stderr);
  const at = shb().length + MAX_SECTION_INTERFACES * one.length;
  assert.match(r.stderr, new RegExp(`section 0 declares more than ${MAX_SECTION_INTERFACES} interfaces .*byte offset ${at}, record index 0\\)`));
  assert.match(r.stderr, /the 0 records before it are in/);
}));

test('rewrite: usage errors exit 2 with a clear message', withDir(async (dir) => {
  const input = join(dir, 'in.pcap');
  writeFileSync(input, classicFile({ records: recordsOf(ethernetCases().slice(0, 1)) }));
  const out = join(dir, 'out.pcap');
  const badConfig = join(dir, 'bad.conf');
  writeFileSync(badConfig, '# rules\n203.0.113.10 = one\n');
  const dupConfig = join(dir, 'dup.conf');
  writeFileSync(dupConfig, '203.0.113.20 = 1\n');
  // --help says so: [daemon] settings are checked as l3dsr run checks them, though not used here.
  const daemonConfig = join(dir, 'daemon.conf');
  writeFileSync(daemonConfig, '203.0.113.20 = 1\n[daemon]\nqueues = 100\n');
  const cases: [string[], RegExp][] = [
    [[...RULES, '--bogus', input, out], /Unknown option '--bogus'/],
    [[...RULES, input], /expected two files, IN\.pcap and OUT\.pcap, got 1/],
    [[...RULES, input, out, 'extra'], /got 3/],
    [[input, out], /no rules: give at least one --rule/],
    [['--rule', '1=010.0.113.10', input, out], /--rule 1=010\.0\.113\.10: destination: .*dotted-quad/],
    [['--rule', '64=203.0.113.10', input, out], /dscp: expected an integer 0-63/],
    [['--rule', `1=${VIP4}`, '--rule', '1=203.0.113.11', input, out], /DSCP 1 is already used for IPv4/],
    [[...RULES, join(dir, 'missing.pcap'), out], /cannot read input .*missing\.pcap: no such file/],
    [[...RULES, input, join(dir, 'no-such-dir', 'out.pcap')], /cannot write output .*no-such-dir/],
    [[...RULES, '--verdicts', join(dir, 'nope', 'v.jsonl'), input, out], /cannot write --verdicts/],
    [[...RULES, input, input], /is the input file/],
    [[...RULES, dir, out], /is a directory/],
    [[...RULES, '--config', join(dir, 'missing.conf'), input, out], /missing\.conf: cannot read the file \(ENOENT\)/],
    [['--config', badConfig, input, out], /bad\.conf:2: dscp: expected an integer 0-63, got "one"/],
    [['--config', daemonConfig, input, out], /daemon\.conf:3: queues: expected an integer 1-64, got "100"/],
    [['--rule', `1=${VIP4}`, '--config', dupConfig, input, out], /DSCP 1 is already used for IPv4 .*by rule --rule 1=203\.0\.113\.10/],
  ];
  for (const [argv, message] of cases) {
    const r = await run(argv);
    assert.equal(r.status, 2, `${argv.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, argv.join(' '));
  }
  assert.deepEqual(readFileSync(input), Buffer.from(classicFile({ records: recordsOf(ethernetCases().slice(0, 1)) })), 'input untouched');
  const help = await run(['--help']);
  assert.equal(help.status, 0);
  assert.match(help.stdout, /^usage: l3dsr rewrite/);
}));

test('rewrite: an output or --verdicts file that is the input, or each other, by any name, is refused with exit 2 before anything is written', withDir(async (dir) => {
  const input = join(dir, 'in.pcap');
  const original = classicFile({ records: recordsOf(ethernetCases()) });
  writeFileSync(input, original);
  const out = join(dir, 'out.pcap');
  const hard = join(dir, 'hard.pcap');
  linkSync(input, hard);
  const soft = join(dir, 'soft.pcap');
  symlinkSync('in.pcap', soft);
  const dirLink = join(dir, 'again');
  symlinkSync('.', dirLink);
  // A dangling link: writing through it would create out.pcap.
  const toOut = join(dir, 'to-out.jsonl');
  symlinkSync('out.pcap', toOut);
  const cases: [string[], RegExp][] = [
    [[input, hard], /output .*hard\.pcap is the input file .*in\.pcap \(same device and inode/],
    [[input, soft], /output .*soft\.pcap is the input file/],
    [[input, join(dirLink, 'in.pcap')], /output .*again\/in\.pcap is the input file/],
    [[soft, input], /output .*in\.pcap is the input file .*soft\.pcap/],
    [['--verdicts', input, input, out], /--verdicts .*in\.pcap is the input file/],
    [['--verdicts', hard, input, out], /--verdicts .*hard\.pcap is the input file/],
    [['--verdicts', out, input, out], /--verdicts .*out\.pcap is the output file/],
    [['--verdicts', toOut, input, out], /--verdicts .*to-out\.jsonl is the output file/],
    [['--verdicts', join(dirLink, 'out.pcap'), input, out], /--verdicts .*again\/out\.pcap is the output file/],
  ];
  for (const [args, message] of cases) {
    const r = await run([...RULES, ...args]);
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.deepEqual(readFileSync(input), Buffer.from(original), `${args.join(' ')}: input untouched`);
    assert.equal(existsSync(out), false, `${args.join(' ')}: no output created`);
  }
  // The output existing already is no reason to refuse, and the same file must still be caught.
  writeFileSync(out, 'old');
  const outHard = join(dir, 'out-hard.jsonl');
  linkSync(out, outHard);
  const r = await run([...RULES, '--verdicts', outHard, input, out]);
  assert.equal(r.status, 2, r.stderr);
  assert.match(r.stderr, /--verdicts .*out-hard\.jsonl is the output file .*out\.pcap \(same device and inode/);
  assert.equal(readFileSync(out, 'utf8'), 'old');
  const ok = await run([...RULES, '--quiet', '--verdicts', join(dir, 'v.jsonl'), input, out]);
  assert.equal(ok.status, 0, ok.stderr);
  assert.deepEqual(readFileSync(input), Buffer.from(original), 'input untouched by a good run');
}));

test('rewrite: a progress line is drawn only on a TTY, and cleared before the summary', withDir(async (dir) => {
  const input = join(dir, 'in.pcap');
  writeFileSync(input, classicFile({ records: recordsOf(ethernetCases()) }));
  const r = await run([...RULES, input, join(dir, 'out.pcap')], true);
  assert.equal(r.status, 0);
  assert.match(r.stderr, /^\r\x1b\[K\s*\d+% \d+ packets, \d+ kpps/);
  assert.match(r.stderr, /\r\x1b\[Kl3dsr rewrite: 10 records/);
}));
