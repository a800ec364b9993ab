// Builds and tears down the three-namespace L3DSR lab (see plan.ts for the
// picture). Every instance has its own namespace names, so tests can build a
// lab while another one exists; destroy() is idempotent and safe to call on
// an error path or from a signal handler.
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Family } from '../../src/core/types.js';
import { ip, nft, nftApply, writeSysctl, type Where } from '../../src/system/index.js';
import { LB_TABLE, SERVER_TABLE, deleteTableCommands, lbRuleset, serverRewriteRuleset } from './nft-rulesets.js';
import { NamespaceLab, nextLabName } from './namespaces.js';
import { DEFAULT_LAB_VIPS, LAB_INTERFACES, LAB_PLAN, type LabRole, type LabVip } from './plan.js';

export interface LabOptions {
  /** Services the LB balances; default DEFAULT_LAB_VIPS. */
  vips?: readonly LabVip[];
  /**
   * Put every VIP on srv's `lo` (IPv6 with nodad). Off by default: in the
   * real setup that is the daemon's job, and tests of it start without.
   */
  vipsOnLoopback?: boolean;
  /** Namespace name prefix; default `l3dsr-<pid>-<n>`. */
  name?: string;
}

export const LAB_ROLES: readonly LabRole[] = ['cli', 'lb', 'srv'];
/** Where cli must route VIPs so that requests pass the LB. */
const VIP_PREFIX: Record<Family, string> = { 4: '203.0.113.0/24', 6: '2001:db8:203::/64' };
export class LabError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'LabError';
  }
}

export class Lab extends NamespaceLab<LabRole> {
  readonly vips: readonly LabVip[];
  readonly interfaces = LAB_INTERFACES;
  readonly plan = LAB_PLAN;

  private constructor(name: string, vips: readonly LabVip[]) {
    super(name, LAB_ROLES);
    this.vips = vips;
  }

  /** Builds a lab; on any failure removes what it built and rethrows. */
  static async create(options: LabOptions = {}): Promise<Lab> {
    const vips = options.vips ?? DEFAULT_LAB_VIPS;
    validateVips(vips);
    const lab = new Lab(options.name ?? nextLabName(), vips);
    try {
      await lab.#build(options.vipsOnLoopback ?? false);
    } catch (err) {
      await lab.destroy().catch(() => {});
      throw err;
    }
    return lab;
  }

  /** Adds every VIP to srv's `lo` (what the daemon does in production). */
  async addVipsToLoopback(): Promise<void> {
    for (const vip of this.vips) {
      const length = vip.family === 4 ? 32 : 128;
      const extra = vip.family === 6 ? ['nodad'] : [];
      await ip([`-${vip.family}`, 'addr', 'replace', `${vip.address}/${length}`, 'dev', 'lo', ...extra], this.where('srv'));
    }
  }

  /** Takes the lab's nftables LB out of lb: a benchmark puts the balancer it measures there instead. */
  async removeLbRuleset(): Promise<void> {
    await deleteTables(this.vips, LB_TABLE, this.where('lb'));
  }

  /** The kernel's own server-side rewrite in srv (`ip dscp D ip daddr set VIP`). */
  async installKernelRewrite(): Promise<void> {
    await this.removeKernelRewrite();
    await nftApply(serverRewriteRuleset(this.vips), this.where('srv'));
  }

  async removeKernelRewrite(): Promise<void> {
    await deleteTables(this.vips, SERVER_TABLE, this.where('srv'));
  }

  async #build(vipsOnLoopback: boolean): Promise<void> {
    const [cli, lb, srv] = LAB_ROLES.map((role) => this.where(role)) as [Where, Where, Where];
    const i = LAB_INTERFACES;
    await this.createNamespaces();
    await ip(['link', 'add', 'name', i.cliToLb, 'type', 'veth', 'peer', 'name', i.lbToCli, 'netns', this.namespaces.lb], cli);
    await ip(['link', 'add', 'name', i.lbToSrv, 'type', 'veth', 'peer', 'name', i.srvToLb, 'netns', this.namespaces.srv], lb);
    await ip(['link', 'add', 'name', i.cliToSrv, 'type', 'veth', 'peer', 'name', i.srvToCli, 'netns', this.namespaces.srv], cli);

    for (const family of [4, 6] as const) {
      const p = LAB_PLAN[family];
      const addr = (address: string, length: number, dev: string, where: Where) =>
        ip([`-${family}`, 'addr', 'add', `${address}/${length}`, 'dev', dev, ...(family === 6 ? ['nodad'] : [])], where);
      await addr(p.client, p.directLength, i.cliToSrv, cli);
      await addr(p.cliLinkAddress, p.cliLbLength, i.cliToLb, cli);
      await addr(p.lbLinkAddress, p.cliLbLength, i.lbToCli, lb);
      await addr(p.lbToSrvAddress, p.ripLength, i.lbToSrv, lb);
      await addr(p.rip, p.ripLength, i.srvToLb, srv);
      await addr(p.serverDirect, p.directLength, i.srvToCli, srv);
    }
    for (const [where, devs] of [[cli, [i.cliToLb, i.cliToSrv]], [lb, [i.lbToCli, i.lbToSrv]], [srv, [i.srvToLb, i.srvToCli]]] as const) {
      for (const dev of devs) await ip(['link', 'set', 'dev', dev, 'up'], where);
    }
    for (const family of [4, 6] as const) {
      const p = LAB_PLAN[family];
      for (const prefix of p.viaLb) {
        await ip([`-${family}`, 'route', 'add', prefix, 'via', p.lbLinkAddress, 'dev', i.cliToLb, 'src', p.client], cli);
      }
      await ip([`-${family}`, 'route', 'add', p.clientPrefix, 'via', p.cliLinkAddress, 'dev', i.lbToCli], lb);
    }

    // lb is a router that must not tell anyone about shorter paths; cli and
    // srv see traffic arrive on one link and leave on the other (that is
    // DSR), so strict reverse-path filtering would drop it.
    await writeSysctl('net.ipv4.ip_forward', '1', lb);
    await writeSysctl('net.ipv6.conf.all.forwarding', '1', lb);
    for (const key of ['all', 'default', i.lbToCli, i.lbToSrv]) await writeSysctl(`net/ipv4/conf/${key}/send_redirects`, '0', lb);
    for (const [where, devs] of [[cli, [i.cliToLb, i.cliToSrv]], [lb, [i.lbToCli, i.lbToSrv]], [srv, [i.srvToLb, i.srvToCli]]] as const) {
      for (const dev of devs) await writeSysctl(`net/ipv4/conf/${dev}/rp_filter`, '0', where);
    }

    await nftApply(lbRuleset(this.vips), lb);
    if (vipsOnLoopback) await this.addVipsToLoopback();
  }
}

async function deleteTables(vips: readonly LabVip[], name: string, where: Where): Promise<void> {
  const existing = await nft(['list', 'tables'], where);
  for (const args of deleteTableCommands(vips, name)) {
    if (existing.split('\n').some((line) => line.trim() === `table ${args[2]} ${name}`)) await nft(args, where);
  }
}

/** Refuses VIPs outside the lab's VIP prefixes, DSCPs out of range, and two VIPs of a family on one DSCP. */
export function validateVips(vips: readonly LabVip[]): void {
  const seen = new Set<string>();
  for (const vip of vips) {
    const label = `lab VIP ${vip.address} (IPv${vip.family}, DSCP ${vip.dscp})`;
    if (!Number.isInteger(vip.dscp) || vip.dscp < 0 || vip.dscp > 63) {
      throw new LabError(`${label}: DSCP must be an integer 0-63`, 'ERR_L3DSR_LAB_DSCP');
    }
    const valid = vip.family === 4 ? isIPv4(vip.address) : vip.family === 6 && isIPv6(vip.address);
    if (!valid) throw new LabError(`${label}: not an IPv${vip.family} address`, 'ERR_L3DSR_LAB_ADDRESS');
    if (!ipaddr.parse(vip.address).match(ipaddr.parseCIDR(VIP_PREFIX[vip.family]))) {
      throw new LabError(`${label}: must lie in ${VIP_PREFIX[vip.family]}, which cli routes via the LB`, 'ERR_L3DSR_LAB_ADDRESS');
    }
    const key = `${vip.family}/${vip.dscp}`;
    if (seen.has(key)) throw new LabError(`${label}: a second IPv${vip.family} VIP on the same DSCP`, 'ERR_L3DSR_LAB_DSCP');
    seen.add(key);
  }
}
