// Counters in the ECMP lab that tell where the traffic went: packets from
// a VIP that rtr receives from the server segment, and any for the client
// that reach a balancer (with direct server return, none should); and what
// rtr's ECMP route sent each balancer, packets and new TCP connections
// (SYNs); and which balancer carried which connection.
import { nft, nftApply } from '../../src/system/index.js';
import { BALANCERS, ECMP_INTERFACES, type BalancerRole, type EcmpFamilyPlan } from './ecmp-plan.js';
import type { EcmpLab } from './ecmp.js';

const OBSERVE = 'l3dsr_lab_observe';

/**
 * Counters `replies4` and `replies6` in rtr (from the server segment) and in
 * each balancer (to the client: a health check's answer, from a VIP to the
 * balancer itself, is not one); in rtr also, per balancer, the packets and
 * the SYNs it forwarded to that balancer (`to-lb1`, `syn-lb1`…).
 */
export async function installObservers(lab: EcmpLab): Promise<void> {
  const vipSources = (p: Pick<EcmpFamilyPlan, 'vipPrefix'>, f: string) => `${f} saddr ${p.vipPrefix}`;
  const toClient = (p: Pick<EcmpFamilyPlan, 'client'>, f: string) => `${f} daddr ${p.client} `;
  const chain = (name: string, hook: string, rules: string[]) =>
    [`  chain ${name} {`, `    type filter hook ${hook} priority raw;`, ...rules.map((r) => `    ${r}`), '  }'];
  const table = (...chains: string[][]) => [`table inet ${OBSERVE} {`, ...chains.flat(), '}', ''].join('\n');
  const replies = (prefix: (p: EcmpFamilyPlan, f: string) => string) => ([4, 6] as const).map((family) => {
    const [p, f] = [lab.plan[family], family === 4 ? 'ip' : 'ip6'];
    return `${prefix(p, f)}${vipSources(p, f)} counter comment "replies${family}"`;
  });
  const towards = BALANCERS.flatMap((lb) => {
    const out = `oifname "${ECMP_INTERFACES.rtrToLb[lb]}"`;
    return [`${out} counter comment "to-${lb}"`, `${out} tcp flags & (syn | ack) == syn counter comment "syn-${lb}"`];
  });
  await nftApply(table(chain('c', 'prerouting', replies(() => `iifname "${ECMP_INTERFACES.rtrToBack}" `)), chain('f', 'forward', towards)), lab.where('rtr'));
  for (const lb of BALANCERS) await nftApply(table(chain('c', 'prerouting', replies(toClient))), lab.where(lb));
}

/** A counter installObservers made. */
export async function observed(lab: EcmpLab, role: 'rtr' | BalancerRole, comment: string): Promise<number> {
  const listing = JSON.parse(await nft(['-j', 'list', 'table', 'inet', OBSERVE], lab.where(role))) as {
    nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { packets: number } }> } }>;
  };
  const packets = listing.nftables.find((e) => e.rule?.comment === comment)?.rule?.expr.find((x) => x.counter)?.counter?.packets;
  if (packets === undefined) throw new Error(`${role}: no counter ${comment} in table inet ${OBSERVE}`);
  return packets;
}

const FLOWS = 'l3dsr_lab_flows';

/**
 * Sets `ports4` and `ports6` in each balancer: the client ports of the TCP
 * connections to `port` whose packets it balanced, as they leave on the
 * server segment. A connection's port in both balancers' sets went through
 * both: what moving from a dead balancer to the live one looks like.
 */
export async function installFlowRecorders(lab: EcmpLab, port: number): Promise<void> {
  const rules = [4, 6].map((family) =>
    `    oifname "${ECMP_INTERFACES.lbToBack}" meta nfproto ipv${family} tcp dport ${port} add @ports${family} { tcp sport }`);
  const ruleset = [
    `table inet ${FLOWS} {`,
    ...[4, 6].map((family) => `  set ports${family} { type inet_service; flags dynamic; size 65535; }`),
    '  chain c {', '    type filter hook postrouting priority 0;', ...rules, '  }', '}', '',
  ].join('\n');
  for (const lb of BALANCERS) await nftApply(ruleset, lab.where(lb));
}

/** The client ports a balancer's recorder holds for one family (installFlowRecorders). */
export async function recordedPorts(lab: EcmpLab, lb: BalancerRole, family: 4 | 6): Promise<Set<number>> {
  const listing = JSON.parse(await nft(['-j', 'list', 'set', 'inet', FLOWS, `ports${family}`], lab.where(lb))) as {
    nftables: Array<{ set?: { elem?: Array<number | { elem: { val: number } }> } }>;
  };
  const elems = listing.nftables.find((e) => e.set)?.set?.elem ?? [];
  return new Set(elems.map((e) => (typeof e === 'number' ? e : e.elem.val)));
}
