// nftables rulesets the lab installs: the stateless software LB in `lb`, and
// the in-kernel server-side rewrite in `srv` (the reference our userspace
// rewriter replaces, also the benchmarks' baseline). nft 1.0.6 rejects the
// one-line `table { chain { … } }` form, hence one statement per line.
import type { Family } from '../../src/core/types.js';
import { LAB_PLAN, type LabVip } from './plan.js';

export const LB_TABLE = 'l3dsr_lab_lb';
export const SERVER_TABLE = 'l3dsr_lab_srv';

const NFT_FAMILY: Record<Family, 'ip' | 'ip6'> = { 4: 'ip', 6: 'ip6' };

function table(family: Family, name: string, statements: string[]): string {
  return [
    `table ${NFT_FAMILY[family]} ${name} {`,
    '  chain pre {',
    '    type filter hook prerouting priority mangle;',
    ...statements.map((s) => `    ${s}`),
    '  }',
    '}',
    '',
  ].join('\n');
}

const families = (vips: readonly LabVip[]): Family[] => [...new Set(vips.map((v) => v.family))];

/** The LB: VIP → RIP and DSCP set, per VIP; counters let tests see what it forwarded. */
export function lbRuleset(vips: readonly LabVip[]): string {
  return families(vips)
    .map((family) => {
      const f = NFT_FAMILY[family];
      const rip = LAB_PLAN[family].rip;
      const rules = vips
        .filter((v) => v.family === family)
        .map((v) => `${f} daddr ${v.address} counter ${f} dscp set ${v.dscp} ${f} daddr set ${rip}`);
      return table(family, LB_TABLE, rules);
    })
    .join('');
}

/** The server-side rewrite done by the kernel: `ip dscp D ip daddr set VIP`. */
export function serverRewriteRuleset(vips: readonly LabVip[]): string {
  return families(vips)
    .map((family) => {
      const f = NFT_FAMILY[family];
      const rules = vips
        .filter((v) => v.family === family)
        .map((v) => `${f} dscp ${v.dscp} counter ${f} daddr set ${v.address}`);
      return table(family, SERVER_TABLE, rules);
    })
    .join('');
}

/** `nft` commands deleting what the two functions above create (for the families used). */
export const deleteTableCommands = (vips: readonly LabVip[], name: string): string[][] =>
  families(vips).map((family) => ['delete', 'table', NFT_FAMILY[family], name]);

/** The stand-in balancer's table (tools/lab/ecmp.ts installs it in lb1 and lb2). */
export const STAND_IN_TABLE = 'l3dsr_lab_balancer';
/** One seed for every stand-in: balancers behind ECMP must send a flow to the same backend. */
export const STAND_IN_SEED = 0x4c334453;

/** A VIP as the stand-in balances it. */
export interface StandInVip extends LabVip {
  /** RIPs of the VIP's family; a weight (default 1) gives a backend that many slots of the hash map; 0 none. */
  backends: ReadonlyArray<{ address: string; weight?: number }>;
}

/**
 * A stateless balancer in nftables, what `l3dsr lb` is compared with: per
 * VIP, TCP and UDP are spread by `jhash` of the source address and ports
 * over the backends (a slot per unit of weight), with the VIP's DSCP set;
 * anything else to a VIP, or a VIP without a backend, is dropped (a
 * balancer would route it back to its router otherwise). Counters show what
 * each balancer forwarded. No connection table: a change of backends moves
 * flows, unlike the Maglev table.
 */
export function standInBalancerRuleset(vips: readonly StandInVip[]): string {
  return families(vips)
    .map((family) => {
      const f = NFT_FAMILY[family];
      const rules = vips.filter((v) => v.family === family).flatMap((v) => {
        const slots = v.backends.flatMap((b) => Array<string>(b.weight ?? 1).fill(b.address));
        const map = slots.map((address, k) => `${k} : ${address}`).join(', ');
        const balance = slots.length === 0 ? [] : [
          `${f} daddr ${v.address} meta l4proto { tcp, udp } counter ${f} dscp set ${v.dscp} ` +
            `${f} daddr set jhash ${f} saddr . th sport . th dport mod ${slots.length} seed ${hex32(STAND_IN_SEED)} map { ${map} } ` +
            `comment "${standInComment('balanced', v.address)}"`,
        ];
        return [...balance, `${f} daddr ${v.address} counter drop comment "${standInComment('dropped', v.address)}"`];
      });
      return table(family, STAND_IN_TABLE, rules);
    })
    .join('');
}

/** The comment on a stand-in rule, by which its counter is found. */
export const standInComment = (what: 'balanced' | 'dropped', vip: string): string => `${what} ${vip}`;

const hex32 = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;
