// Builds and tears down the balancer lab (ecmp-plan.ts has the picture):
// a client, a router that spreads the VIPs over two balancers by ECMP, and
// two real servers on a segment both balancers reach. Until `l3dsr lb`
// exists the balancers can be nftables stand-ins (standInBalancerRuleset);
// the servers run whatever the test starts (`l3dsr run`, the kernel's
// rewrite).
import { ip, writeSysctl, type Where } from '../../src/system/index.js';
import type { Family } from '../../src/core/types.js';
import { validateVips } from './lab.js';
import { NamespaceLab, nextLabName } from './namespaces.js';
import type { StandInVip } from './nft-rulesets.js';
import { installStandIn, removeStandIn, standInPackets } from './stand-in.js';
import { DEFAULT_LAB_VIPS, type LabVip } from './plan.js';
import {
  BALANCERS, ECMP_INTERFACES, ECMP_PLAN, ECMP_ROLES, SERVERS, type BalancerRole, type EcmpRole, type ServerRole,
} from './ecmp-plan.js';

export interface EcmpLabOptions {
  /** The VIPs; default DEFAULT_LAB_VIPS (in 203.0.113.0/24 and 2001:db8:203::/64, which rtr routes over the balancers). */
  vips?: readonly LabVip[];
  /** Install the nftables stand-in in both balancers, every VIP spread evenly over both servers. Default false. */
  standIn?: boolean;
  /** Put every VIP on both servers' `lo` (the daemon's job with `--loopback-vips`). Default false. */
  vipsOnLoopback?: boolean;
  /** Namespace name prefix; default `l3dsr-<pid>-<n>`. */
  name?: string;
}

const I = ECMP_INTERFACES;
const FAMILIES: readonly Family[] = [4, 6];

export class EcmpLab extends NamespaceLab<EcmpRole> {
  readonly vips: readonly LabVip[];
  readonly interfaces = ECMP_INTERFACES;
  readonly plan = ECMP_PLAN;
  readonly balancers = BALANCERS;
  readonly servers = SERVERS;

  private constructor(name: string, vips: readonly LabVip[]) {
    super(name, ECMP_ROLES);
    this.vips = vips;
  }

  /** Builds the lab; on any failure removes what it built and rethrows. */
  static async create(options: EcmpLabOptions = {}): Promise<EcmpLab> {
    const vips = options.vips ?? DEFAULT_LAB_VIPS;
    validateVips(vips);
    const lab = new EcmpLab(options.name ?? nextLabName(), vips);
    try {
      await lab.#build();
      if (options.standIn ?? false) {
        for (const lb of BALANCERS) await lab.installStandIn(lb);
      }
      if (options.vipsOnLoopback ?? false) {
        for (const srv of SERVERS) await lab.addVipsToLoopback(srv);
      }
    } catch (err) {
      await lab.destroy().catch(() => {});
      throw err;
    }
    return lab;
  }

  /** Each VIP with both servers' RIPs of its family, weight 1: what the stand-ins balance by default. */
  get standInVips(): StandInVip[] {
    return this.vips.map((v) => ({ ...v, backends: SERVERS.map((s) => ({ address: ECMP_PLAN[v.family].rip[s] })) }));
  }

  /** Replaces the stand-in balancer's ruleset in `lb` (default: every VIP over both servers). */
  installStandIn(lb: BalancerRole, vips: readonly StandInVip[] = this.standInVips): Promise<void> {
    return installStandIn(this.where(lb), vips);
  }

  removeStandIn(lb: BalancerRole): Promise<void> {
    return removeStandIn(this.where(lb));
  }

  /** Packets the stand-in in `lb` balanced (or dropped) for `vip`, read from its rule's counter. */
  standInPackets(lb: BalancerRole, vip: LabVip, what: 'balanced' | 'dropped' = 'balanced'): Promise<number> {
    return standInPackets(this.where(lb), vip, what);
  }

  /**
   * Takes a balancer off the router's ECMP route, as a dead machine is: its
   * link to rtr goes down, so rtr (ignore_routes_with_linkdown) skips its
   * nexthop and hashes every flow to the other balancer. What a routing
   * daemon's BFD or BGP withdrawal does on a real network, without its delay.
   */
  async cutBalancer(lb: BalancerRole): Promise<void> {
    await ip(['link', 'set', I.lbToRtr, 'down'], this.where(lb));
  }

  /**
   * Puts a balancer cut by cutBalancer back on the router's ECMP route, with
   * what its link took with it going down: its IPv6 address (the kernel
   * drops a downed link's IPv6 addresses unless keep_addr_on_down), put
   * back before the link comes up so that rtr's first neighbour
   * solicitation for the next hop is answered, and its default routes.
   */
  async restoreBalancer(lb: BalancerRole): Promise<void> {
    for (const family of FAMILIES) await this.#balancerFront(lb, family, 'replace');
    await ip(['link', 'set', I.lbToRtr, 'up'], this.where(lb));
    for (const family of FAMILIES) await this.#balancerRoute(lb, family, 'replace');
  }

  /** A balancer's address on its link to rtr. */
  #balancerFront(lb: BalancerRole, family: Family, verb: 'add' | 'replace'): Promise<string> {
    const p = ECMP_PLAN[family];
    return ip([`-${family}`, 'addr', verb, `${p.lbFront[lb]}/${p.frontLength}`, 'dev', I.lbToRtr, ...(family === 6 ? ['nodad'] : [])], this.where(lb));
  }

  /** A balancer's default route, via rtr. */
  #balancerRoute(lb: BalancerRole, family: Family, verb: 'add' | 'replace'): Promise<string> {
    return ip([`-${family}`, 'route', verb, 'default', 'via', ECMP_PLAN[family].rtrToLb[lb], 'dev', I.lbToRtr], this.where(lb));
  }

  /** Adds every VIP to a server's `lo` (IPv6 with nodad). */
  async addVipsToLoopback(srv: ServerRole): Promise<void> {
    for (const vip of this.vips) {
      const extra = vip.family === 6 ? ['nodad'] : [];
      await ip([`-${vip.family}`, 'addr', 'replace', `${vip.address}/${vip.family === 4 ? 32 : 128}`, 'dev', 'lo', ...extra], this.where(srv));
    }
  }

  async #build(): Promise<void> {
    await this.createNamespaces();
    const [cli, rtr, sw] = (['cli', 'rtr', 'sw'] as const).map((r) => this.where(r)) as [Where, Where, Where];
    const veth = (a: string, where: Where, b: string, peerRole: EcmpRole) =>
      ip(['link', 'add', 'name', a, 'type', 'veth', 'peer', 'name', b, 'netns', this.namespaces[peerRole]], where);
    const up = (dev: string, where: Where) => ip(['link', 'set', 'dev', dev, 'up'], where);

    await veth(I.cliToRtr, cli, I.rtrToCli, 'rtr');
    for (const lb of BALANCERS) await veth(I.rtrToLb[lb], rtr, I.lbToRtr, lb);
    // The server segment: a bridge in sw with one port per namespace on it.
    await ip(['link', 'add', 'name', I.bridge, 'type', 'bridge'], sw);
    const onSegment: Array<[keyof typeof I.bridgePort, string]> = [
      ...BALANCERS.map((lb) => [lb, I.lbToBack] as [BalancerRole, string]),
      ...SERVERS.map((srv) => [srv, I.srvToBack] as [ServerRole, string]),
      ['rtr', I.rtrToBack],
    ];
    for (const [role, dev] of onSegment) {
      await veth(I.bridgePort[role], sw, dev, role);
      await ip(['link', 'set', 'dev', I.bridgePort[role], 'master', I.bridge], sw);
      await up(I.bridgePort[role], sw);
    }
    await up(I.bridge, sw);

    for (const family of FAMILIES) {
      const p = ECMP_PLAN[family];
      const addr = (address: string, length: number, dev: string, where: Where) =>
        ip([`-${family}`, 'addr', 'add', `${address}/${length}`, 'dev', dev, ...(family === 6 ? ['nodad'] : [])], where);
      await addr(p.client, p.clientLength, I.cliToRtr, cli);
      await addr(p.rtrClient, p.clientLength, I.rtrToCli, rtr);
      await addr(p.rtrBack, p.backLength, I.rtrToBack, rtr);
      for (const lb of BALANCERS) {
        await addr(p.rtrToLb[lb], p.frontLength, I.rtrToLb[lb], rtr);
        await this.#balancerFront(lb, family, 'add');
        await addr(p.lbBack[lb], p.backLength, I.lbToBack, this.where(lb));
      }
      for (const srv of SERVERS) await addr(p.rip[srv], p.backLength, I.srvToBack, this.where(srv));
    }
    await up(I.cliToRtr, cli);
    for (const dev of [I.rtrToCli, I.rtrToBack, ...BALANCERS.map((lb) => I.rtrToLb[lb])]) await up(dev, rtr);
    for (const lb of BALANCERS) for (const dev of [I.lbToRtr, I.lbToBack]) await up(dev, this.where(lb));
    for (const srv of SERVERS) await up(I.srvToBack, this.where(srv));

    for (const family of FAMILIES) {
      const p = ECMP_PLAN[family];
      const route = (args: string[], where: Where) => ip([`-${family}`, 'route', 'add', ...args], where);
      await route(['default', 'via', p.rtrClient, 'dev', I.cliToRtr], cli);
      await route([p.vipPrefix, ...BALANCERS.flatMap((lb) => ['nexthop', 'via', p.lbFront[lb], 'dev', I.rtrToLb[lb]])], rtr);
      for (const lb of BALANCERS) await this.#balancerRoute(lb, family, 'add');
      for (const srv of SERVERS) await route(['default', 'via', p.rtrBack, 'dev', I.srvToBack], this.where(srv));
    }

    // rtr and the balancers forward; rtr hashes ports too, so the
    // connections of one client spread over both balancers, and skips a
    // balancer whose link is down. Nobody sends redirects: on the segment a
    // balancer's packet for a RIP and a server's reply via rtr must stay as
    // they are.
    for (const role of ['rtr', ...BALANCERS] as const) {
      const where = this.where(role);
      await writeSysctl('net.ipv4.ip_forward', '1', where);
      await writeSysctl('net.ipv6.conf.all.forwarding', '1', where);
      await writeSysctl('net.ipv4.conf.all.send_redirects', '0', where);
      await writeSysctl('net.ipv4.conf.default.send_redirects', '0', where);
    }
    // The 5-tuple read from each packet (policy 3; fields: addresses 0x3,
    // protocol 0x4, ports 0x30), as a router hashes. The L4 policy (1)
    // takes the hash a local sender's socket left on the packet instead,
    // which TCP changes after a retransmission timeout: a flow through a
    // dead balancer would move to the live one by itself, cut or not.
    for (const family of ['ipv4', 'ipv6']) {
      await writeSysctl(`net.${family}.fib_multipath_hash_policy`, '3', rtr);
      await writeSysctl(`net.${family}.fib_multipath_hash_fields`, String(0x37), rtr);
    }
    await writeSysctl('net.ipv4.conf.all.ignore_routes_with_linkdown', '1', rtr);
    await writeSysctl('net.ipv6.conf.all.ignore_routes_with_linkdown', '1', rtr);
  }
}
