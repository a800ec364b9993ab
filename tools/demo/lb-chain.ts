// `npm run demo -- --lb`: the whole L3DSR chain in the ECMP lab (docs/lab.md).
// A router spreads the client's connections over two balancers running
// `l3dsr lb`; they pick a real server by weight and mark the packets; the
// servers' `l3dsr run` restores the VIP and they answer the client directly,
// through the router, never through a balancer. Then a server's service
// stops (its health check takes it out, and back when it returns), and a
// balancer is killed while long TCP connections run through it.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import ipaddr from 'ipaddr.js';
import type { BackendStatus } from '../../src/daemon/snapshot.js';
import { ip } from '../../src/system/index.js';
import {
  BALANCERS, ECHO_PORT, ECMP_INTERFACES, ECMP_ROLES, EcmpLab, LongFlows, NAMED_PORT, SERVERS, installObservers, observed, probe,
  sameAddress, startEchoService, startNamedService,
} from '../lab/index.js';
import type { BalancerRole, EchoService, FlowAnswer, LabVip, ServerRole } from '../lab/index.js';
import { balancerConfig, realServerConfig, sectionName } from './configs.js';
import { LabDaemon, rulePackets, statusCommand, waitFor, type DaemonExit, type StatusJson } from './lab-daemon.js';
import { INDENT, daemonLines, indent, say, step } from './output.js';
import { removeLab, removeLabNow } from './lab-removal.js';

/** The built-in weights: srv1 should carry about twice what srv2 does. */
const WEIGHTS: Readonly<Record<ServerRole, number>> = { srv1: 2, srv2: 1 };
/** Health checks on the echo service: a SYN every 500 ms; down after 3 failed, up after 2 answered. */
const CHECK = { port: ECHO_PORT, interval: '500ms', rise: 2, fall: 3 } as const;
/** Connections per VIP for the spread: that a server gets none of a VIP's is (2/3)^48 < 10^-8, that a balancer gets none of all 2^-96. */
const SPREAD_CONNECTIONS = 48;
/** New connections per VIP while srv2 is out. */
const PROBES = 24;
/** Long connections per VIP while a balancer dies: that it carried none of them is 2^-32. */
const FLOWS = 16;
/** The server whose service stops, and the balancer that is killed. */
const STOPPED: ServerRole = 'srv2';
const KILLED: BalancerRole = 'lb1';
/**
 * How long a ping of the long connections may take while the balancer dies:
 * what reached it after the kill is lost, and TCP sends it again (after
 * 200 ms, then doubling) until rtr routes round it. Bounds a hang only.
 */
const FLOW_TIMEOUT_MS = 20_000;
/** Bounds waiting for a health transition, or for the first checks. */
const HEALTH_BOUND_MS = 30_000;
/** Ping rounds after the cut before the verdict: the flows that lb1 carried have been through lb2 by then. */
const ROUNDS_AFTER_CUT = 3;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The fields of a logfmt line (quoted values unquoted). */
function logFields(line: string): Record<string, string> {
  return Object.fromEntries([...line.matchAll(/(\w+)=("(?:[^"\\]|\\.)*"|\S+)/g)].map((m) => [m[1]!, m[2]!.replace(/^"|"$/g, '')]));
}

/** A balancer's health transition, as the demo prints it: `backend down web4 198.51.100.12 (result=refused, 3 checks)`. */
function transitionText(line: string): string {
  const f = logFields(line);
  return `${f.msg} ${f.section} ${f.backend} (result=${f.result}, ${f.checks} checks)`;
}

/** `SECTION ADDRESS`, the address in one spelling whoever wrote it. */
const backendKey = (section: string, address: string): string => `${section} ${ipaddr.parse(address).toString()}`;

/** Packets a balancer's status says it balanced to each backend, by backendKey. */
function backendPackets(s: StatusJson): Map<string, bigint> {
  return new Map(s.balancer!.vips.flatMap((v) => v.backends.map((b) => [backendKey(v.name, b.address), BigInt(b.packets as unknown as string)] as const)));
}

const minus = (a: Map<string, bigint>, b: Map<string, bigint>) => new Map([...a].map(([k, n]) => [k, n - (b.get(k) ?? 0n)]));

const percent = (n: number, of: number) => `${(100 * n / of).toFixed(1)} %`;

export class LbChain {
  readonly labName = `l3dsr-demo-${process.pid}`;
  /** Set as soon as the lab is being built, so that a Ctrl-C then still removes it. */
  labPending?: Promise<EcmpLab>;
  lab?: EcmpLab;
  vips: LabVip[] = [];
  readonly servers = new Map<ServerRole, LabDaemon>();
  readonly balancers = new Map<BalancerRole, LabDaemon>();
  readonly echo = new Map<ServerRole, EchoService>();
  flows?: LongFlows;
  /** Each check: what it says, and whether it held. */
  readonly checks: { what: string; ok: boolean }[] = [];
  readonly exits = new Map<string, DaemonExit>();
  readonly dir = mkdtempSync(join(tmpdir(), 'l3dsr-demo-'));
  #teardown?: Promise<void>;

  async run(): Promise<boolean> {
    say('l3dsr demo --lb: client → router (ECMP) → 2 × l3dsr lb → 2 × l3dsr run → replies straight back to the client');

    step(1, 'Building the ECMP lab (seven network namespaces, documentation addresses only)');
    this.labPending = EcmpLab.create({ name: this.labName });
    const lab = this.lab = await this.labPending;
    // One service, an IPv4 and an IPv6 VIP on one DSCP.
    const vips = this.vips = lab.vips.filter((v) => v.dscp === lab.vips[0]!.dscp);
    const p4 = lab.plan[4];
    const fork = `cli ${p4.client} ── rtr ─ECMP─`;
    say(indent([
      `${fork}┬─ lb1 ─┐                 ┌─ srv1 (RIP ${p4.rip.srv1})`,
      `${' '.repeat(fork.length)}└─ lb2 ─┴─ server segment ┴─ srv2 (RIP ${p4.rip.srv2})`,
      'requests: cli → rtr → lb1 or lb2 → srv1 or srv2;  replies: srv → rtr → cli, never through a balancer',
      `VIPs: ${vips.map((v) => v.address).join(', ')} (DSCP ${vips[0]!.dscp}); rtr routes them over both balancers, hashing ports too`,
      `namespaces: ${Object.values(lab.namespaces).join(', ')}`,
    ].join('\n')));
    await installObservers(lab);

    step(2, 'Starting l3dsr run on both servers, and two services on the VIPs there');
    const serverConfig = join(this.dir, 'l3dsr.conf');
    writeFileSync(serverConfig, realServerConfig(vips, ECMP_INTERFACES.srvToBack));
    this.#showConfig(serverConfig, realServerConfig(vips, ECMP_INTERFACES.srvToBack));
    for (const srv of SERVERS) {
      const socket = join(this.dir, `${srv}.sock`);
      say(indent(`$ ip netns exec ${lab.namespaces[srv]} l3dsr run --config ${serverConfig} --control-socket ${socket}`));
      this.servers.set(srv, await LabDaemon.start(lab, ['--config', serverConfig], {
        role: srv, controlSocket: socket, onLine: daemonLines(srv, /running|failed|refused|error/),
      }));
    }
    const addresses = vips.map((v) => v.address);
    for (const srv of SERVERS) {
      this.echo.set(srv, await startEchoService(lab, addresses, { role: srv }));
      await startNamedService(lab, srv, addresses, srv);
    }
    say(indent([
      `port ${ECHO_PORT}: an HTTP and UDP echo service, what the balancers' health checks connect to`,
      `port ${NAMED_PORT}: a service that answers every line with its server's name (srv1, srv2)`,
    ].join('\n')));

    step(3, 'Starting l3dsr lb on both balancers');
    const text = balancerConfig(vips, (v) => SERVERS.map((s) => ({ address: lab.plan[v.family].rip[s], weight: WEIGHTS[s] })), CHECK, ECMP_INTERFACES.lbToRtr);
    const lbConfig = join(this.dir, 'l3dsr-lb.conf');
    writeFileSync(lbConfig, text);
    this.#showConfig(lbConfig, text);
    for (const lb of BALANCERS) {
      const socket = join(this.dir, `${lb}.sock`);
      say(indent(`$ ip netns exec ${lab.namespaces[lb]} l3dsr lb --config ${lbConfig} --control-socket ${socket}`));
      this.balancers.set(lb, await LabDaemon.start(lab, ['--config', lbConfig], {
        role: lb, command: 'lb', controlSocket: socket, onLine: this.#balancerLines(lb),
      }));
    }
    await this.#untilEveryBackend('every backend answering its health checks', (b) => b.state === 'up' && (b.health?.checks.up ?? 0) >= CHECK.rise);
    say(indent(`health checks: every backend answered its first ${CHECK.rise} checks, on both balancers`));

    await this.#spread(4);
    await this.#healthCheck(5);
    await this.#killBalancer(7);

    await this.teardown(8);
    for (const [who, exit] of this.exits) {
      if (who !== `lb ${KILLED}`) this.#check(exit.code === 0, `l3dsr ${who} stopped cleanly on SIGTERM (exit ${exit.code ?? exit.signal})`);
    }

    step(9, 'Checks');
    for (const c of this.checks) say(indent(`${c.ok ? 'ok    ' : 'FAILED'} ${c.what}`));
    const failed = this.checks.filter((c) => !c.ok).length;
    say(failed === 0 ? `\nOK: every check held (${this.checks.length} of ${this.checks.length}).` : `\nFAILED: ${failed} of ${this.checks.length} checks did not hold.`);
    return failed === 0;
  }

  /** Many connections: which server each reached, what each balancer carried, and that no reply passed a balancer. */
  async #spread(n: number): Promise<void> {
    const lab = this.lab!;
    step(n, `The spread: ${SPREAD_CONNECTIONS} TCP connections per VIP from cli, each asked once which server it reached`);
    const before = await this.#counters();
    const flows = this.flows = new LongFlows(lab, 'cli', this.vips.map((v) => v.address), SPREAD_CONNECTIONS);
    const answers = await flows.ping();
    await flows.stop();
    this.flows = undefined;
    const after = await this.#counters();

    const share = new Map((await this.balancers.get('lb1')!.status()).balancer!.vips.flatMap((v) =>
      v.backends.map((b) => [backendKey(v.name, b.address), percent(b.slots, v.tableSize)] as const)));
    say(indent('what the servers answered (connections), against the weights (each one\'s share of the Maglev table):'));
    let everyServer = true;
    for (const v of this.vips) {
      const of = answers.filter((a) => sameAddress(a.address, v.address));
      const row = SERVERS.map((s) => {
        const count = of.filter((a) => a.answer === s).length;
        everyServer &&= count > 0;
        return `${s} ${String(count).padStart(2)} (${percent(count, of.length)}; weight ${WEIGHTS[s]}, table ${share.get(backendKey(sectionName(v), lab.plan[v.family].rip[s]))})`;
      });
      const broken = of.filter((a) => !/^srv[12]$/.test(a.answer));
      say(indent(`  ${v.address.padEnd(17)} ${row.join('   ')}${broken.length ? `   no answer: ${broken.length} (${broken[0]!.answer})` : ''}`));
    }
    const weights = SERVERS.reduce((n, s) => n + WEIGHTS[s], 0);
    say(indent(`  together          ${SERVERS.map((s) => {
      const count = answers.filter((a) => a.answer === s).length;
      return `${s} ${count} of ${answers.length} (${percent(count, answers.length)}; its weight's share ${percent(WEIGHTS[s], weights)})`;
    }).join('   ')}`));
    const answered = answers.filter((a) => /^srv[12]$/.test(a.answer)).length;
    this.#check(answered === answers.length, `${answered} of ${answers.length} connections answered by srv1 or srv2`);
    this.#check(everyServer, 'both servers carried connections of each VIP');

    const syns = BALANCERS.map((lb) => after.syns.get(lb)! - before.syns.get(lb)!);
    say(indent(`what rtr's ECMP route sent each balancer (SYNs): ${BALANCERS.map((lb, k) => `${lb} ${syns[k]}`).join(', ')}`));
    this.#check(syns.every((s) => s > 0), 'both balancers carried connections');
    say(indent('what each balancer balanced to each backend (packets, from its l3dsr status):'));
    for (const lb of BALANCERS) {
      const d = minus(after.balanced.get(lb)!, before.balanced.get(lb)!);
      say(indent(`  ${lb}  ${[...d].map(([k, p]) => `${k} ${p}`).join(', ')}`));
    }
    say(indent(statusCommand(lab.namespaces.lb1, this.balancers.get('lb1')!.controlSocket)));
    say(indent(`what each server's l3dsr run turned back into the VIP (packets, health checks included): ${SERVERS.map((s) => `${s} ${after.restored.get(s)! - before.restored.get(s)!}`).join(', ')}`));
    const replies = after.replies - before.replies;
    const atBalancers = BALANCERS.map((lb) => after.repliesAt.get(lb)! - before.repliesAt.get(lb)!);
    say(indent(`replies from the VIPs: ${replies} packets reached rtr from the server segment; ${BALANCERS.map((lb, k) => `${lb} saw ${atBalancers[k]}`).join(', ')}`));
    this.#check(replies > 0 && atBalancers.every((r) => r === 0), 'the replies went straight back through rtr, none through a balancer');
  }

  /** A server's service stops: its health checks fail, both balancers take it out; it comes back. */
  async #healthCheck(n: number): Promise<void> {
    const lab = this.lab!;
    const ripOf = (v: LabVip) => lab.plan[v.family].rip[STOPPED];
    step(n, `A health check fails: the service on port ${ECHO_PORT} stops on ${STOPPED}`);
    const echo = this.echo.get(STOPPED)!;
    say(indent(`$ kill ${echo.child.pid}    # the echo service in ${STOPPED}`));
    const downs = this.#transitions('down', ripOf);
    await echo.stop();
    this.echo.delete(STOPPED);
    await downs;
    const isDown = (b: BackendStatus) => b.state === 'down' && b.slots === 0;
    this.#check((await this.#stoppedServerStatus(isDown)).every(isDown), `${STOPPED} down (backend down) on both balancers, with no share of the table`);

    const before = await this.#counters();
    const targets = this.vips.flatMap((v) => Array.from({ length: PROBES }, () => ({ protocol: 'http' as const, address: v.address })));
    const results = await probe(lab, targets, { timeoutMs: 10_000 });
    const after = await this.#counters();
    const good = results.filter((r) => r.ok && sameAddress(r.reply!.local, r.target.address) && sameAddress(r.from!, r.target.address)).length;
    const toServer = (s: ServerRole) => BALANCERS.reduce((sum, lb) => sum + this.vips.reduce((m, v) => {
      const k = backendKey(sectionName(v), lab.plan[v.family].rip[s]);
      return m + after.balanced.get(lb)!.get(k)! - before.balanced.get(lb)!.get(k)!;
    }, 0n), 0n);
    say(indent(`${good} of ${results.length} new HTTP connections to the VIPs (port ${ECHO_PORT}) answered by the VIP`
      + `${good < results.length ? `; failed: ${results.find((r) => !r.ok)?.error ?? 'not from the VIP'}` : ''}`));
    say(indent(`packets the balancers sent meanwhile: ${SERVERS.map((s) => `to ${s} ${toServer(s)}`).join(', ')}`));
    this.#check(good === results.length && toServer(STOPPED) === 0n,
      `with ${STOPPED} out, ${good} of ${results.length} new connections answered, all on the other server`);

    step(n + 1, `The service comes back on ${STOPPED}`);
    const ups = this.#transitions('up', ripOf);
    this.echo.set(STOPPED, await startEchoService(lab, this.vips.map((v) => v.address), { role: STOPPED }));
    say(indent(`echo service started again in ${STOPPED} (port ${ECHO_PORT})`));
    await ups;
    const isUp = (b: BackendStatus) => b.state === 'up' && b.slots > 0;
    this.#check((await this.#stoppedServerStatus(isUp)).every(isUp), `${STOPPED} back (backend up) on both balancers, with its share of the table`);
  }

  /**
   * The stopped server's backend of every VIP on both balancers, as their
   * status shows it (and the demo prints it), once all are `settled` or
   * HEALTH_BOUND_MS has passed. A transition is logged when the checks
   * decide it, and the queues' tables take it a moment later: until then
   * the status has the new state with the old table share.
   */
  async #stoppedServerStatus(settled: (b: BackendStatus) => boolean): Promise<BackendStatus[]> {
    const lab = this.lab!;
    const read = async () => {
      const rows: string[] = [];
      const found: BackendStatus[] = [];
      for (const lb of BALANCERS) {
        for (const v of (await this.balancers.get(lb)!.status()).balancer!.vips) {
          const vip = this.vips.find((x) => sectionName(x) === v.name)!;
          const b = v.backends.find((x) => sameAddress(x.address, lab.plan[vip.family].rip[STOPPED]))!;
          rows.push(`${lb} ${v.name} ${b.address} ${b.state}, ${b.slots} of ${v.tableSize} table slots`);
          found.push(b);
        }
      }
      return { rows, found };
    };
    let last = await read();
    await waitFor('the balancers\' tables to take the transition', HEALTH_BOUND_MS, async () => {
      if (last.found.every(settled)) return true;
      last = await read();
      return undefined;
    }).catch(() => {});
    say(indent(`the balancers' status: ${last.rows.join('; ')}`));
    return last.found;
  }

  /** kill -9 of a balancer while long connections run through both: every connection keeps answering, from its own server. */
  async #killBalancer(n: number): Promise<void> {
    const lab = this.lab!;
    step(n, `A balancer dies mid-transfer: kill -9 of ${KILLED}'s l3dsr lb while ${FLOWS} long TCP connections per VIP run`);
    const synsBefore = await this.#counters();
    const flows = this.flows = new LongFlows(lab, 'cli', this.vips.map((v) => v.address), FLOWS, FLOW_TIMEOUT_MS);
    const first = await flows.ping();
    const synsAfter = await this.#counters();
    const carried = BALANCERS.map((lb) => `${lb} ${synsAfter.syns.get(lb)! - synsBefore.syns.get(lb)!}`);
    say(indent(`the connections through rtr (SYNs): ${carried.join(', ')}`));
    this.#showAnswers('before', first);
    this.#check(synsAfter.syns.get(KILLED)! > synsBefore.syns.get(KILLED)!, `${KILLED} carried some of the long connections before it was killed`);

    // Ping every connection, round after round, while the balancer dies.
    const rounds: { answers: FlowAnswer[]; ms: number }[] = [];
    let stop = false;
    const pinging = (async () => {
      while (!stop) {
        const started = Date.now();
        const answers = await flows.ping();
        rounds.push({ answers, ms: Date.now() - started });
      }
    })();
    try {
      await sleep(300);
      const killed = this.balancers.get(KILLED)!;
      say(indent(`$ kill -9 ${killed.pid}    # l3dsr lb in ${KILLED}`));
      killed.signal('SIGKILL');
      const exit = await killed.exited;
      this.exits.set(`lb ${KILLED}`, exit);
      say(indent(`l3dsr lb in ${KILLED} is gone (${exit.signal ?? `exit ${exit.code}`}): what rtr still sends it is lost`));
      await lab.cutBalancer(KILLED);
      const cutAt = rounds.length;
      const toKilled = await observed(lab, 'rtr', `to-${KILLED}`);
      say(indent(`$ ip netns exec ${lab.namespaces[KILLED]} ip link set ${ECMP_INTERFACES.lbToRtr} down    # lab.cutBalancer: rtr skips its nexthop, as a BGP withdrawal would`));
      for (const family of [4, 6] as const) {
        const route = await ip([`-${family}`, 'route', 'show', lab.plan[family].vipPrefix], lab.where('rtr'));
        say(indent(`rtr: ${route.trim().split('\n').map((l) => l.trim()).join('  ')}`));
      }
      await waitFor(`${ROUNDS_AFTER_CUT} ping rounds after the cut`, FLOW_TIMEOUT_MS * (ROUNDS_AFTER_CUT + 1), async () =>
        (rounds.length >= cutAt + ROUNDS_AFTER_CUT ? true : undefined));
      stop = true;
      await pinging;
      const sentToKilled = await observed(lab, 'rtr', `to-${KILLED}`) - toKilled;
      say(indent(`after the cut rtr sent ${KILLED} ${sentToKilled} packets`));
      this.#check(sentToKilled === 0, `rtr sent ${KILLED} nothing after the cut`);
    } finally {
      stop = true;
      await pinging.catch(() => {});
    }

    const changed = rounds.flatMap((r, k) => r.answers.flatMap((a, i) => (a.answer === first[i]!.answer ? [] : [`round ${k + 1}, connection ${i + 1} to ${a.address}: ${first[i]!.answer} → ${a.answer}`])));
    say(indent(`${rounds.length} rounds of pings over all ${first.length} connections while ${KILLED} was killed and cut; the slowest took ${Math.max(...rounds.map((r) => r.ms))} ms (TCP sent again what ${KILLED} dropped)`));
    for (const c of changed.slice(0, 10)) say(indent(`  ${c}`));
    this.#showAnswers('after', rounds[rounds.length - 1]!.answers);
    const kept = first.filter((f, i) => /^srv[12]$/.test(f.answer) && rounds.every((r) => r.answers[i]!.answer === f.answer)).length;
    this.#check(kept === first.length, `${kept} of ${first.length} long connections kept answering from their own server through ${KILLED}'s kill -9`);
  }

  /** The servers each connection answered from, per VIP, in connection order. */
  #showAnswers(when: 'before' | 'after', answers: readonly FlowAnswer[]): void {
    say(indent(`${when === 'before' ? 'before the kill' : `after (${KILLED} killed and cut)`}, each connection's server, in order:`));
    for (const v of this.vips) {
      say(indent(`  ${when.padEnd(6)} ${v.address.padEnd(17)} ${answers.filter((a) => sameAddress(a.address, v.address)).map((a) => a.answer).join(' ')}`));
    }
  }

  /** What the counters of the lab and the daemons say now. */
  async #counters() {
    const lab = this.lab!;
    const syns = new Map<BalancerRole, number>();
    const repliesAt = new Map<BalancerRole, number>();
    const balanced = new Map<BalancerRole, Map<string, bigint>>();
    for (const lb of BALANCERS) {
      syns.set(lb, await observed(lab, 'rtr', `syn-${lb}`));
      repliesAt.set(lb, await observed(lab, lb, 'replies4') + await observed(lab, lb, 'replies6'));
      const d = this.balancers.get(lb)!;
      if (d.running) balanced.set(lb, backendPackets(await d.status()));
    }
    const restored = new Map<ServerRole, bigint>();
    for (const srv of SERVERS) {
      const s = await this.servers.get(srv)!.status();
      restored.set(srv, this.vips.reduce((n, v) => n + rulePackets(s, v.address), 0n));
    }
    const replies = await observed(lab, 'rtr', 'replies4') + await observed(lab, 'rtr', 'replies6');
    return { syns, repliesAt, balanced, restored, replies };
  }

  /**
   * Resolves once both balancers have logged their next `backend STATE`
   * line for `rip(v)` of every VIP (their onLine prints it as it comes).
   */
  async #transitions(state: 'up' | 'down', rip: (v: LabVip) => string): Promise<void> {
    await Promise.all(BALANCERS.flatMap((lb) => this.vips.map(async (v) => {
      const d = this.balancers.get(lb)!;
      const re = new RegExp(`msg="backend ${state}" section=${sectionName(v)} backend=${rip(v).replace(/[.:]/g, '\\$&')} `);
      const seen = d.log.split('\n').filter((l) => re.test(l)).length;
      await waitFor(`${lb}: backend ${state} ${rip(v)}`, HEALTH_BOUND_MS, async () => d.log.split('\n').filter((l) => re.test(l))[seen]);
    })));
  }

  /** Waits until every backend on both balancers satisfies `ok`. */
  #untilEveryBackend(what: string, ok: (b: BackendStatus) => boolean): Promise<true> {
    return waitFor(what, HEALTH_BOUND_MS, async () => {
      for (const d of this.balancers.values()) if (!(await d.status()).balancer!.vips.every((v) => v.backends.every(ok))) return undefined;
      return true;
    });
  }

  /**
   * Prints a balancer's start-up, failures and every health transition as
   * it happens: also one the demo does not cause (a server flapping on a
   * loaded machine), which explains a failed check.
   */
  #balancerLines(lb: BalancerRole): (line: string) => void {
    const startUp = daemonLines(lb, /running|failed|refused|error/);
    return (line) => {
      if (/msg="backend (up|down)"/.test(line)) say(`${INDENT}  ${lb}: ${transitionText(line)}`);
      else startUp(line);
    };
  }

  #showConfig(path: string, text: string): void {
    say(indent(`config ${path}:\n${text.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => `  ${l}`).join('\n')}`));
  }

  #check(ok: boolean, what: string): void {
    this.checks.push({ ok, what });
  }

  /** Idempotent; safe to start from a signal handler while run() is still going. */
  teardown(n?: number): Promise<void> {
    this.#teardown ??= (async () => {
      if (n !== undefined) step(n, 'Tearing down');
      else say('\nTearing down');
      // EcmpLab.create() removes a half-built lab itself when it fails.
      this.lab ??= await this.labPending?.catch(() => undefined);
      await this.flows?.stop().catch(() => {});
      const stopped: string[] = [];
      const daemons = [...[...this.balancers].map(([r, d]) => [`lb ${r}`, d] as const), ...[...this.servers].map(([r, d]) => [`run ${r}`, d] as const)];
      for (const [who, d] of daemons) {
        if (!d.running) continue;
        const exit = await d.stop('SIGTERM');
        this.exits.set(who, exit);
        stopped.push(`l3dsr ${who}: exit ${exit.code ?? exit.signal}`);
      }
      if (stopped.length) say(indent(`daemons stopped: ${stopped.join(', ')}`));
      for (const e of this.echo.values()) await e.stop().catch(() => {});
      await removeLab(this.lab, this.dir);
    })();
    return this.#teardown;
  }

  /** Last resort when the process is leaving without teardown() having finished. */
  destroyNow(): void {
    for (const d of [...this.balancers.values(), ...this.servers.values()]) d.child.kill('SIGKILL');
    removeLabNow(this.lab, this.labPending && { name: this.labName, roles: ECMP_ROLES }, this.dir);
  }
}
