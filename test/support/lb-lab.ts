// What the tests of `l3dsr lb` in the ECMP lab share: their [lb]
// configuration of the lab's VIPs, a reload of every balancer, and the
// backend the reference model (tools/oracle/lb.ts) gives a new TCP flow,
// to hold what the daemons did against.
import assert from 'node:assert/strict';
import { readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { DESTINATION_CLASSES, inspectSteering } from '../../src/steering/index.js';
import { ipJson, readSysctl } from '../../src/system/index.js';
import { lbConfigurationFrom } from '../../src/config/load.js';
import { ECMP_INTERFACES, type BalancerRole, type EcmpLab, type LabVip } from '../../tools/lab/index.js';
import { LbModel } from '../../tools/oracle/lb.js';
import { buildPacket, tcp } from '../../tools/packets/build.js';
import { PROTO } from '../../tools/packets/layout.js';
import { waitFor, type LabDaemon } from './daemon.js';

/** A backend that is not there: a reload adds it, and the flows it takes go nowhere. */
export const ABSENT: Record<4 | 6, string> = { 4: '198.51.100.13', 6: '2001:db8:198::13' };

/** One [lb] section per VIP, both servers as backends (and `extra` ones), no health checks unless `check` says. */
export function lbConfig(lab: EcmpLab, vips: readonly LabVip[], extra: (v: LabVip) => string[] = () => [], check = ['check = none']): string {
  return [
    '[daemon]', `steer = ${ECMP_INTERFACES.lbToRtr}`, 'connections = 1024', '',
    ...vips.flatMap((v) => [
      `[lb web${v.family}]`, `vip = ${v.address}`, `dscp = ${v.dscp}`,
      `backends = ${[...lab.servers.map((s) => lab.plan[v.family].rip[s]), ...extra(v)].join(', ')}`, ...check, '',
    ]),
  ].join('\n');
}

/** Log lines matching `re`. */
export const logLines = (log: string, re: RegExp): string[] => log.split('\n').filter((l) => re.test(l));

/** Writes `text` to `config`, sends SIGHUP to every balancer and waits until each says how its reload went; returns their new log lines. */
export async function reloadBalancers(balancers: Iterable<LabDaemon>, config: string, text: string): Promise<string> {
  writeFileSync(config, text);
  const done = /msg=reloaded|msg="reload (refused|failed)/;
  const out: string[] = [];
  for (const d of balancers) {
    const from = d.log.length;
    const seen = logLines(d.log, done).length;
    d.signal('SIGHUP');
    await waitFor('the reload to finish', 30_000, async () => (logLines(d.log, done).length > seen ? true : undefined));
    out.push(d.log.slice(from));
  }
  return out.join('');
}

/**
 * The backend the model of a balancer with the configuration `text` and an
 * empty connection table sends a TCP segment of `client`:`port` → `vip`:`servicePort`
 * to: what every balancer and every queue of one must pick for a new flow.
 */
export function modelBackend(text: string): (client: string, port: number, vip: string, servicePort: number) => string | undefined {
  const { vips } = lbConfigurationFrom([{ file: 'lb.conf', text }]);
  return (client, port, vip, servicePort) => new LbModel(vips)
    .process(buildPacket({ src: client, dst: vip, protocol: PROTO.TCP, transport: tcp(0, [port, servicePort]) })).backend;
}

/** The sysctls a balancer's daemon may change (rp_filter on the steered link), read before it starts to check it put them back. */
const BALANCER_SYSCTLS = ['net/ipv4/conf/all/rp_filter', 'net/ipv4/conf/default/rp_filter', `net/ipv4/conf/${ECMP_INTERFACES.lbToRtr}/rp_filter`];

export const readBalancerSysctls = (lab: EcmpLab, lb: BalancerRole): Promise<string[]> =>
  Promise.all(BALANCER_SYSCTLS.map((k) => readSysctl(k, lab.where(lb))));

/** What a stopped balancer must have left: no TUN, no clsact qdisc or filter of its kind, the sysctls as before, an empty runtime directory. */
export async function assertBalancerLeftNothing(lab: EcmpLab, lb: BalancerRole, sysctlsBefore: readonly string[] | undefined, runtimeDir: string): Promise<void> {
  assert.deepEqual(await ipJson<unknown[]>(['link', 'show', 'type', 'tun'], lab.where(lb)), [], `${lb}: a TUN is left`);
  const steering = await inspectSteering({ interfaces: [ECMP_INTERFACES.lbToRtr], netns: lab.namespaces[lb], kind: DESTINATION_CLASSES });
  assert.equal(steering.interfaces[0]!.hasClsact, false, `${lb}: a clsact qdisc is left`);
  assert.deepEqual(steering.interfaces[0]!.ours, [], `${lb}: filters are left`);
  assert.deepEqual(await readBalancerSysctls(lab, lb), sysctlsBefore, `${lb}: rp_filter not restored`);
  assert.deepEqual(readdirSync(runtimeDir), [], `${lb}: runtime files are left`);
}
