// The nftables stand-in balancer (standInBalancerRuleset) in a namespace:
// installed, removed, its counters read. The ECMP lab puts it in its
// balancers; the balancer's capacity benchmark in the three-namespace lab's
// lb, as the baseline `l3dsr lb` is measured against.
import { nft, nftApply, type Where } from '../../src/system/index.js';
import { STAND_IN_TABLE, standInBalancerRuleset, standInComment, type StandInVip } from './nft-rulesets.js';
import type { LabVip } from './plan.js';

/** Replaces the stand-in's table in `where` with one for `vips`. */
export async function installStandIn(where: Where, vips: readonly StandInVip[]): Promise<void> {
  await removeStandIn(where);
  await nftApply(standInBalancerRuleset(vips), where);
}

export async function removeStandIn(where: Where): Promise<void> {
  const tables = (await nft(['list', 'tables'], where)).split('\n').map((l) => l.trim());
  for (const family of ['ip', 'ip6']) {
    if (tables.includes(`table ${family} ${STAND_IN_TABLE}`)) await nft(['delete', 'table', family, STAND_IN_TABLE], where);
  }
}

/** Packets the stand-in in `where` balanced (or dropped) for `vip`, read from its rule's counter. */
export async function standInPackets(where: Where, vip: LabVip, what: 'balanced' | 'dropped' = 'balanced'): Promise<number> {
  const listing = JSON.parse(await nft(['-j', 'list', 'table', vip.family === 4 ? 'ip' : 'ip6', STAND_IN_TABLE], where)) as {
    nftables: Array<{ rule?: { comment?: string; expr: Array<{ counter?: { packets: number } }> } }>;
  };
  const rule = listing.nftables.find((e) => e.rule?.comment === standInComment(what, vip.address))?.rule;
  const packets = rule?.expr.find((x) => x.counter !== undefined)?.counter?.packets;
  if (packets === undefined) throw new Error(`${where.netns ?? 'this namespace'}: no stand-in rule "${standInComment(what, vip.address)}" with a counter`);
  return packets;
}
