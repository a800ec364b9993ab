// Counters in the ECMP lab that tell where the answers went: packets from
// a VIP that rtr receives from the server segment, and any that reach a
// balancer (with direct server return, none should); and which balancer
// carried which connection.
import assert from 'node:assert/strict';
import { nft, nftApply } from '../../src/system/index.js';
import { BALANCERS, ECMP_INTERFACES, type EcmpFamilyPlan, type EcmpLab } from '../../tools/lab/index.js';

const OBSERVE = 'l3dsr_test_observe';

/** Counters `replies4` and `replies6` in rtr (from the server segment) and in each balancer (from anywhere). */
export async function installObservers(lab: EcmpLab): Promise<void> {
  const vipSources = (p: Pick<EcmpFamilyPlan, 'vipPrefix'>, f: string) => `${f} saddr ${p.vipPrefix}`;
  const table = (hook: string, rules: string[]) => [
    `table inet ${OBSERVE} {`, '  chain c {', `    type filter hook ${hook} priority raw;`, ...rules.map((r) => `    ${r}`), '  }', '}', '',
  ].join('\n');
  await nftApply(table('prerouting', [4, 6].map((family) =>
    `iifname "${ECMP_INTERFACES.rtrToBack}" ${vipSources(lab.plan[family as 4 | 6], family === 4 ? 'ip' : 'ip6')} counter comment "replies${family}"`)), lab.where('rtr'));
  for (const lb of BALANCERS) {
    await nftApply(table('prerouting', [4, 6].map((family) =>
      `${vipSources(lab.plan[family as 4 | 6], family === 4 ? 'ip' : 'ip6')} counter comment "replies${family}"`)), lab.where(lb));
  }
}

/** A counter installObservers made. */
export async function observed(lab: EcmpLab, role: 'rtr' | 'lb1' | 'lb2', comment: string): Promise<number> {
  const listing = JSON.parse(await nft(['-j', 'list', 'table', 'inet', OBSERVE], lab.where(role))) as {
    nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { packets: number } }> } }>;
  };
  const packets = listing.nftables.find((e) => e.rule?.comment === comment)?.rule?.expr.find((x) => x.counter)?.counter?.packets;
  assert.ok(packets !== undefined, `${role}: no counter ${comment}`);
  return packets;
}

const FLOWS = 'l3dsr_test_flows';

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
export async function recordedPorts(lab: EcmpLab, lb: 'lb1' | 'lb2', family: 4 | 6): Promise<Set<number>> {
  const listing = JSON.parse(await nft(['-j', 'list', 'set', 'inet', FLOWS, `ports${family}`], lab.where(lb))) as {
    nftables: Array<{ set?: { elem?: Array<number | { elem: { val: number } }> } }>;
  };
  const elems = listing.nftables.find((e) => e.set)?.set?.elem ?? [];
  return new Set(elems.map((e) => (typeof e === 'number' ? e : e.elem.val)));
}
