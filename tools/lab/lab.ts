// Builds and tears down the three-namespace L3DSR lab (see plan.ts for the
// picture). Every instance has its own namespace names, so tests can build a
// lab while another one exists; destroy() is idempotent and safe to call on
// an error path or from a signal handler.
import { execFileSync, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { isIPv4, isIPv6 } from 'node:net';
import ipaddr from 'ipaddr.js';
import type { Family } from '../../src/core/types.js';
import {
  addNamespace, deleteNamespace, execInNamespace, ip, namespaceExists, nft, nftApply, spawnInNamespace, writeSysctl,
  type Where,
} from '../../src/system/index.js';
import { SERVER_TABLE, deleteTableCommands, lbRuleset, serverRewriteRuleset } from './nft-rulesets.js';
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

const ROLES: readonly LabRole[] = ['cli', 'lb', 'srv'];
/** Where cli must route VIPs so that requests pass the LB. */
const VIP_PREFIX: Record<Family, string> = { 4: '203.0.113.0/24', 6: '2001:db8:203::/64' };
/** How long a spawned program gets to exit on SIGTERM before SIGKILL. */
const CHILD_EXIT_GRACE_MS = 1000;

let instanceCount = 0;
const liveLabs = new Set<Lab>();

export class LabError extends Error {
  constructor(message: string, readonly code: string) {
    super(message);
    this.name = 'LabError';
  }
}

export class Lab {
  /** Namespace name per role. */
  readonly namespaces: Readonly<Record<LabRole, string>>;
  readonly vips: readonly LabVip[];
  readonly interfaces = LAB_INTERFACES;
  readonly plan = LAB_PLAN;
  #children = new Set<ChildProcess>();

  private constructor(readonly name: string, vips: readonly LabVip[]) {
    this.namespaces = { cli: `${name}-cli`, lb: `${name}-lb`, srv: `${name}-srv` };
    this.vips = vips;
  }

  /** Builds a lab; on any failure removes what it built and rethrows. */
  static async create(options: LabOptions = {}): Promise<Lab> {
    const vips = options.vips ?? DEFAULT_LAB_VIPS;
    validateVips(vips);
    const lab = new Lab(options.name ?? `l3dsr-${process.pid}-${++instanceCount}`, vips);
    liveLabs.add(lab);
    try {
      await lab.#build(options.vipsOnLoopback ?? false);
    } catch (err) {
      await lab.destroy().catch(() => {});
      throw err;
    }
    return lab;
  }

  where(role: LabRole): Where {
    return { netns: this.namespaces[role] };
  }

  /** Runs a program to completion in a role's namespace; resolves with stdout. */
  exec(role: LabRole, file: string, args: readonly string[], input?: string): Promise<string> {
    return execInNamespace(this.namespaces[role], file, args, input);
  }

  /** Starts a long-running program in a role's namespace; it is killed by destroy(). */
  spawn(role: LabRole, file: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
    const child = spawnInNamespace(this.namespaces[role], file, args, options);
    this.#children.add(child);
    child.once('exit', () => this.#children.delete(child));
    child.once('error', () => this.#children.delete(child));
    return child;
  }

  /** Adds every VIP to srv's `lo` (what the daemon does in production). */
  async addVipsToLoopback(): Promise<void> {
    for (const vip of this.vips) {
      const length = vip.family === 4 ? 32 : 128;
      const extra = vip.family === 6 ? ['nodad'] : [];
      await ip([`-${vip.family}`, 'addr', 'replace', `${vip.address}/${length}`, 'dev', 'lo', ...extra], this.where('srv'));
    }
  }

  /** The kernel's own server-side rewrite in srv (`ip dscp D ip daddr set VIP`). */
  async installKernelRewrite(): Promise<void> {
    await this.removeKernelRewrite();
    await nftApply(serverRewriteRuleset(this.vips), this.where('srv'));
  }

  async removeKernelRewrite(): Promise<void> {
    await deleteTables(this.vips, SERVER_TABLE, this.where('srv'));
  }

  /** Stops spawned programs and deletes the namespaces (their interfaces go with them). */
  async destroy(): Promise<void> {
    await Promise.all([...this.#children].map(stopChild));
    const failures: unknown[] = [];
    for (const role of ROLES) {
      await deleteNamespace(this.namespaces[role]).catch((err: unknown) => failures.push(err));
    }
    if (failures.length === 0) liveLabs.delete(this);
    else throw failures[0];
  }

  /** destroy() for places that cannot wait: signal and exit handlers. */
  destroySync(): void {
    for (const child of this.#children) child.kill('SIGKILL');
    for (const role of ROLES) {
      const ns = this.namespaces[role];
      if (namespaceExists(ns)) {
        try {
          execFileSync('ip', ['netns', 'delete', ns], { stdio: 'ignore' });
        } catch {
          // Best effort: the process is going away.
        }
      }
    }
    liveLabs.delete(this);
  }

  async #build(vipsOnLoopback: boolean): Promise<void> {
    const [cli, lb, srv] = ROLES.map((role) => this.where(role)) as [Where, Where, Where];
    const i = LAB_INTERFACES;
    for (const role of ROLES) {
      await addNamespace(this.namespaces[role]);
      const where = this.where(role);
      // Interfaces copy `default` when created: no DAD delay for link-locals,
      // and the reverse-path filter off before any packet flows.
      await writeSysctl('net.ipv6.conf.default.accept_dad', '0', where);
      await writeSysctl('net.ipv4.conf.default.rp_filter', '0', where);
      await writeSysctl('net.ipv4.conf.all.rp_filter', '0', where);
      await ip(['link', 'set', 'dev', 'lo', 'up'], where);
    }
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

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), CHILD_EXIT_GRACE_MS);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

function validateVips(vips: readonly LabVip[]): void {
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

let exitHandlersInstalled = false;

/**
 * Makes SIGINT/SIGTERM (and a normal exit) remove every lab that is still
 * alive. Opt-in, because a SIGINT handler replaces Node's default exit.
 */
export function destroyLabsOnExit(): void {
  if (exitHandlersInstalled) return;
  exitHandlersInstalled = true;
  process.once('exit', () => {
    for (const lab of [...liveLabs]) lab.destroySync();
  });
  for (const [signal, status] of [['SIGINT', 130], ['SIGTERM', 143]] as const) {
    process.once(signal, () => {
      for (const lab of [...liveLabs]) lab.destroySync();
      process.exit(status);
    });
  }
}
