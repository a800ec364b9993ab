// Counters in the ECMP lab that tell where the answers went: packets from
// a VIP that rtr receives from the server segment, and any that reach a
// balancer (with direct server return, none should).
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
