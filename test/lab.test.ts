// The lab's plumbing without any userspace rewriter: with the kernel's own
// server-side rewrite every VIP answers directly from srv (IPv4, IPv6, TCP,
// UDP); without it no request completes. Needs root (skipped without it).
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { Lab, LabError, LAB_INTERFACES, LAB_PLAN, probe, sameAddress, startEchoService } from '../tools/lab/index.js';
import type { EchoService, LabVip, ProbeTarget } from '../tools/lab/index.js';
import { MAX_INTERFACE_NAME, ip, ipJson, namespaceExists, nft, nftApply, type Where } from '../src/system/index.js';
import { privileged } from './support/privilege.js';

const OBSERVE_TABLE = 'l3dsr_test_observe';

function requireRoot(): void {
  assert.equal(process.getuid?.(), 0, 'these tests build network namespaces and must run as root');
}

interface NftRule { rule?: { comment?: string; expr: Array<{ counter?: { packets: number } }> } }

/** Packets counted by the rule with this comment in `nft -j list table inet NAME`. */
async function counter(where: Where, table: string, comment: string): Promise<number> {
  const listing = JSON.parse(await nft(['-j', 'list', 'table', 'inet', table], where)) as { nftables: NftRule[] };
  const rule = listing.nftables.find((e) => e.rule?.comment === comment)?.rule;
  const count = rule?.expr.find((x) => x.counter !== undefined)?.counter?.packets;
  assert.ok(count !== undefined, `no counter with comment ${comment} in table ${table}`);
  return count;
}

/** cli: where did answers from VIPs arrive? srv: did marked packets for the RIP arrive? */
async function installObservers(lab: Lab): Promise<void> {
  const i = LAB_INTERFACES;
  await nftApply([
    `table inet ${OBSERVE_TABLE} {`,
    '  chain in {',
    '    type filter hook prerouting priority raw;',
    `    iifname "${i.cliToSrv}" ip saddr 203.0.113.0/24 counter comment "direct4"`,
    `    iifname "${i.cliToSrv}" ip6 saddr 2001:db8:203::/64 counter comment "direct6"`,
    `    iifname "${i.cliToLb}" ip saddr 203.0.113.0/24 counter comment "vialb4"`,
    `    iifname "${i.cliToLb}" ip6 saddr 2001:db8:203::/64 counter comment "vialb6"`,
    '  }',
    '}',
    '',
  ].join('\n'), lab.where('cli'));
  await nftApply([
    `table inet ${OBSERVE_TABLE} {`,
    '  chain in {',
    '    type filter hook prerouting priority raw;',
    ...lab.vips.map((v) => `    ${v.family === 4 ? 'ip' : 'ip6'} daddr ${LAB_PLAN[v.family].rip} ${v.family === 4 ? 'ip' : 'ip6'} dscp ${v.dscp} counter comment "marked${v.family}-${v.dscp}"`),
    '  }',
    '}',
    '',
  ].join('\n'), lab.where('srv'));
}

const targetsFor = (vips: readonly LabVip[]): ProbeTarget[] =>
  vips.flatMap((v) => [{ protocol: 'http' as const, address: v.address }, { protocol: 'udp' as const, address: v.address }]);

describe('L3DSR lab', privileged('builds the three-namespace lab'), () => {
  let lab: Lab;
  let service: EchoService;

  before(async () => {
    requireRoot();
    lab = await Lab.create({ vipsOnLoopback: true });
    await installObservers(lab);
    service = await startEchoService(lab, lab.vips.map((v) => v.address));
  });

  after(async () => {
    await service?.stop();
    await lab?.destroy();
  });

  it('has several VIPs on several DSCPs, both families', () => {
    const dscps = new Set(lab.vips.map((v) => v.dscp));
    assert.ok(dscps.size >= 2);
    for (const dscp of dscps) {
      assert.deepEqual(lab.vips.filter((v) => v.dscp === dscp).map((v) => v.family).sort(), [4, 6]);
    }
  });

  it('with the kernel rewrite on srv, every VIP answers over TCP and UDP, directly from srv', async () => {
    await lab.installKernelRewrite();
    const before = {
      direct4: await counter(lab.where('cli'), OBSERVE_TABLE, 'direct4'),
      direct6: await counter(lab.where('cli'), OBSERVE_TABLE, 'direct6'),
    };
    const results = await probe(lab, targetsFor(lab.vips));
    for (const r of results) {
      assert.ok(r.ok, `${r.target.protocol} to ${r.target.address}: ${r.error}`);
      assert.ok(sameAddress(r.reply!.local, r.target.address), `delivered to ${r.reply!.local}, not to ${r.target.address}`);
      assert.ok(sameAddress(r.from!, r.target.address), `answer came from ${r.from}`);
      const family = r.target.address.includes(':') ? 6 : 4;
      assert.ok(sameAddress(r.reply!.remote, LAB_PLAN[family].client), `server saw source ${r.reply!.remote}`);
    }
    // Each probe's answer is at least one packet from the VIP on the direct
    // link; none came back through the LB.
    const perFamily = results.length / 2;
    assert.ok(await counter(lab.where('cli'), OBSERVE_TABLE, 'direct4') - before.direct4 >= perFamily);
    assert.ok(await counter(lab.where('cli'), OBSERVE_TABLE, 'direct6') - before.direct6 >= perFamily);
    assert.equal(await counter(lab.where('cli'), OBSERVE_TABLE, 'vialb4'), 0);
    assert.equal(await counter(lab.where('cli'), OBSERVE_TABLE, 'vialb6'), 0);
  });

  it('without a server-side rewrite the marked requests reach srv but none completes', async () => {
    await lab.removeKernelRewrite();
    const marked = async () => Promise.all(lab.vips.map((v) => counter(lab.where('srv'), OBSERVE_TABLE, `marked${v.family}-${v.dscp}`)));
    const before = await marked();
    const results = await probe(lab, targetsFor(lab.vips), { timeoutMs: 1500 });
    for (const r of results) assert.equal(r.ok, false, `${r.target.protocol} to ${r.target.address} completed: ${JSON.stringify(r.reply)}`);
    const afterCounts = await marked();
    lab.vips.forEach((v, k) => assert.ok(afterCounts[k]! > before[k]!, `no packet for ${v.address} arrived at srv marked with DSCP ${v.dscp}`));
  });
});

describe('lab lifecycle', privileged('builds and removes network namespaces'), () => {
  before(requireRoot);

  it('builds a second lab while one exists, without VIPs on lo by default, and destroy() removes all of it', async () => {
    const first = await Lab.create();
    let second: Lab | undefined;
    try {
      second = await Lab.create();
      assert.notEqual(first.namespaces.srv, second.namespaces.srv);
      const addrs = await ipJson<Array<{ addr_info: Array<{ local: string }> }>>(['addr', 'show', 'dev', 'lo'], second.where('srv'));
      const onLo = addrs.flatMap((a) => a.addr_info.map((x) => x.local));
      for (const vip of second.vips) assert.ok(!onLo.some((a) => sameAddress(a, vip.address)), `${vip.address} is on lo`);
      await second.addVipsToLoopback();
      const withVips = (await ipJson<Array<{ addr_info: Array<{ local: string }> }>>(['addr', 'show', 'dev', 'lo'], second.where('srv')))
        .flatMap((a) => a.addr_info.map((x) => x.local));
      for (const vip of second.vips) assert.ok(withVips.some((a) => sameAddress(a, vip.address)), `${vip.address} missing on lo`);
      for (const dev of Object.values(LAB_INTERFACES)) {
        const role = dev === LAB_INTERFACES.cliToLb || dev === LAB_INTERFACES.cliToSrv ? 'cli' : dev.startsWith('lb') ? 'lb' : 'srv';
        assert.ok(dev.length <= MAX_INTERFACE_NAME, `${dev} is too long for an interface name`);
        await ip(['link', 'show', 'dev', dev], second.where(role));
      }
    } finally {
      await second?.destroy();
      await first.destroy();
    }
    for (const lab of [first, second!]) {
      for (const ns of Object.values(lab.namespaces)) assert.equal(namespaceExists(ns), false, `${ns} still exists`);
    }
    await first.destroy();
  });

  it('destroyLabsOnExit(): SIGINT removes the labs of a process', async () => {
    const labModule = new URL('../tools/lab/index.js', import.meta.url).href;
    const script = `
      const { Lab, destroyLabsOnExit } = await import(${JSON.stringify(labModule)});
      destroyLabsOnExit();
      const lab = await Lab.create();
      process.stdout.write(JSON.stringify(Object.values(lab.namespaces)) + '\\n');
      setInterval(() => {}, 1000);
    `;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    const [line] = (await once(child.stdout!, 'data')) as [Buffer];
    const namespaces = JSON.parse(line.toString()) as string[];
    assert.equal(namespaces.length, 3);
    for (const ns of namespaces) assert.ok(namespaceExists(ns), `${ns} was not created`);
    child.kill('SIGINT');
    const [status] = (await once(child, 'exit')) as [number | null];
    assert.equal(status, 130);
    for (const ns of namespaces) assert.equal(namespaceExists(ns), false, `${ns} survived SIGINT`);
  });

  it('refuses a bad VIP list before creating anything', async () => {
    const vips: LabVip[] = [{ family: 4, address: '203.0.113.10', dscp: 1 }, { family: 4, address: '203.0.113.11', dscp: 1 }];
    await assert.rejects(Lab.create({ vips, name: `l3dsr-bad-${process.pid}` }), (e: unknown) => e instanceof LabError && e.code === 'ERR_L3DSR_LAB_DSCP');
    await assert.rejects(Lab.create({ vips: [{ family: 6, address: '203.0.113.10', dscp: 1 }] }), (e: unknown) => e instanceof LabError && e.code === 'ERR_L3DSR_LAB_ADDRESS');
    await assert.rejects(Lab.create({ vips: [{ family: 4, address: '192.0.2.77', dscp: 1 }] }), /must lie in 203\.0\.113\.0\/24/);
    assert.equal(namespaceExists(`l3dsr-bad-${process.pid}-cli`), false);
  });
});
