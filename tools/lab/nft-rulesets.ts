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
