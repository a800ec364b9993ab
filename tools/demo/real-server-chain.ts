// The demo without flags: the real server's half of L3DSR in the
// three-namespace lab. A client asks each VIP over HTTP (IPv4, IPv6) and UDP;
// an nftables LB rewrites the requests to the real server and marks them with
// a DSCP; `l3dsr run` on the real server restores the VIP; the answers go
// straight back to the client, not through the LB.
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Lab, LAB_INTERFACES, LAB_PLAN, LAB_ROLES, probe, sameAddress, startEchoService, ECHO_PORT } from '../lab/index.js';
import type { EchoService, ProbeResult, ProbeTarget } from '../lab/index.js';
import { inspectSteering } from '../../src/steering/index.js';
import { ipJson } from '../../src/system/index.js';
import { realServerConfig } from './configs.js';
import { LabDaemon, rulePackets, statusCommand } from './lab-daemon.js';
import { installReturnPathCounters, lbForwarded, readReturnPathCounters, startCapture, type Capture } from './observe.js';
import { daemonLines, indent, say, step } from './output.js';
import { removeLab, removeLabNow } from './lab-removal.js';

const requestsFor = (lab: Lab): ProbeTarget[] =>
  lab.vips.flatMap((v) => [{ protocol: 'http' as const, address: v.address }, { protocol: 'udp' as const, address: v.address }]);

/** A request succeeded when the VIP itself answered, to the client's own address. */
function answeredByVip(r: ProbeResult): boolean {
  const family = r.target.address.includes(':') ? 6 : 4;
  return r.ok && sameAddress(r.reply!.local, r.target.address) && sameAddress(r.from!, r.target.address)
    && sameAddress(r.reply!.remote, LAB_PLAN[family].client);
}

function describe(r: ProbeResult): string {
  const what = `${r.target.protocol.toUpperCase().padEnd(4)} ${r.target.address.padEnd(17)}`;
  if (!r.ok) return `${what} FAILED: ${r.error}`;
  const verdict = answeredByVip(r) ? 'ok ' : 'WRONG';
  return `${what} ${verdict} answered by ${r.from}, delivered to ${r.reply!.local}, server saw client ${r.reply!.remote}`;
}

/** One captured line per VIP and protocol: enough to see who sent what on which link. */
function sampleLines(lines: readonly string[], lab: Lab): string[] {
  const picked: string[] = [];
  for (const vip of lab.vips) {
    for (const proto of ['tcp', 'UDP']) {
      const line = lines.find((l) => l.includes(`${vip.address}.${ECHO_PORT} >`) && l.toLowerCase().includes(proto.toLowerCase()));
      if (line) picked.push(line);
    }
  }
  return picked;
}

export class RealServerChain {
  readonly labName = `l3dsr-demo-${process.pid}`;
  /** Set as soon as the lab is being built, so that a Ctrl-C then still removes it. */
  labPending?: Promise<Lab>;
  lab?: Lab;
  daemon?: LabDaemon;
  service?: EchoService;
  capture?: Capture;
  readonly dir = mkdtempSync(join(tmpdir(), 'l3dsr-demo-'));
  #teardown?: Promise<void>;

  async run(): Promise<boolean> {
    say('l3dsr demo: client → nftables load balancer → real server running l3dsr → replies straight back to the client');

    step(1, 'Building the lab (three network namespaces, documentation addresses only)');
    this.labPending = Lab.create({ name: this.labName });
    const lab = this.lab = await this.labPending;
    const p4 = LAB_PLAN[4];
    say(indent([
      `cli ${p4.client} ── c-lb ═ lb-c  lb  lb-s ═ s-lb ── srv (RIP ${p4.rip})    requests: cli → LB → srv`,
      `cli          ── veth-c ═══════════════ veth-s ── srv                       replies:  srv → cli, directly`,
      `namespaces: ${Object.values(lab.namespaces).join(', ')}`,
      `LB (nftables in lb): ${lab.vips.map((v) => `${v.address} → RIP, DSCP ${v.dscp}`).join('; ')}`,
    ].join('\n')));

    step(2, 'Starting the daemon in srv');
    const configFile = join(this.dir, 'l3dsr.conf');
    const config = realServerConfig(lab.vips, LAB_INTERFACES.srvToLb);
    writeFileSync(configFile, config);
    say(indent(`config ${configFile}:\n${config.split('\n').filter((l) => l && !l.startsWith('#')).map((l) => `  ${l}`).join('\n')}`));
    const controlSocket = join(this.dir, 'control.sock');
    say(indent(`$ ip netns exec ${lab.namespaces.srv} l3dsr run --config ${configFile} --control-socket ${controlSocket}`));
    this.daemon = await LabDaemon.start(lab, ['--config', configFile], {
      controlSocket,
      onLine: daemonLines('daemon', /ready|offloads|installed|VIPs on lo|running|failed|refused|error/),
    });
    const steered = await inspectSteering({ interfaces: [LAB_INTERFACES.srvToLb], netns: lab.namespaces.srv });
    const filters = steered.interfaces[0]?.ours ?? [];
    say(indent(`tc on ${LAB_INTERFACES.srvToLb}: ${filters.map((f) => `IPv${f.family} DSCP ${f.dscp} → ${f.target}`).join(', ')}`));

    step(3, `Starting an HTTP server and a UDP echo service on every VIP in srv (port ${ECHO_PORT})`);
    this.service = await startEchoService(lab, lab.vips.map((v) => v.address));
    await installReturnPathCounters(lab);
    this.capture = await startCapture(lab, 'cli', LAB_INTERFACES.cliToSrv, 'src net 203.0.113.0/24 or src net 2001:db8:203::/64');
    say(indent('ready; watching cli\'s direct link (veth-c) with tcpdump'));

    step(4, 'Requests from cli to each VIP');
    const forwardedBefore = await Promise.all(lab.vips.map((v) => lbForwarded(lab, v.address)));
    const results = await probe(lab, requestsFor(lab), { timeoutMs: 3000 });
    for (const r of results) say(indent(describe(r)));
    await new Promise((r) => setTimeout(r, 200));
    await this.capture.stop();

    step(5, 'Which way did the packets go?');
    const forwarded = await Promise.all(lab.vips.map((v, k) => lbForwarded(lab, v.address).then((n) => n - forwardedBefore[k]!)));
    const status = await this.daemon.status();
    say(indent(lab.vips.map((v, k) => `${v.address.padEnd(17)} requests: ${forwarded[k]} packets via the LB, ${rulePackets(status, v.address)} rewritten by l3dsr`).join('\n')));
    const counts = await readReturnPathCounters(lab);
    say(indent(`replies from the VIPs, on cli's direct link from srv (veth-c): IPv4 ${counts.direct[4]}, IPv6 ${counts.direct[6]} packets`));
    say(indent(`replies from the VIPs, on cli's link to the LB (c-lb):         IPv4 ${counts.viaLb[4]}, IPv6 ${counts.viaLb[6]} packets`));
    const samples = sampleLines(this.capture.lines, lab);
    if (samples.length) say(indent(`tcpdump -i veth-c on cli (one line per VIP and protocol):\n${samples.map((l) => `  ${l}`).join('\n')}`));

    step(6, 'The daemon\'s counters (l3dsr status)');
    say(indent(statusCommand(lab.namespaces.srv, this.daemon.controlSocket)));

    const good = results.filter(answeredByVip).length;
    const direct = counts.viaLb[4] + counts.viaLb[6] === 0 && counts.direct[4] > 0 && counts.direct[6] > 0;
    await this.teardown(7);
    const ok = good === results.length && direct;
    say(`\n${ok ? 'OK' : 'FAILED'}: ${good} of ${results.length} requests answered by their VIP; replies ${direct ? 'all came straight from srv' : 'did NOT all come straight from srv'}.`);
    return ok;
  }

  /** Idempotent; safe to start from a signal handler while run() is still going. */
  teardown(n?: number): Promise<void> {
    this.#teardown ??= (async () => {
      if (n !== undefined) step(n, 'Tearing down');
      else say('\nTearing down');
      // Lab.create() removes a half-built lab itself when it fails.
      this.lab ??= await this.labPending?.catch(() => undefined);
      await this.capture?.stop().catch(() => {});
      if (this.daemon) {
        const exit = await this.daemon.stop('SIGTERM');
        const left = this.lab
          ? await inspectSteering({ interfaces: [LAB_INTERFACES.srvToLb], netns: this.lab.namespaces.srv }).catch(() => undefined)
          : undefined;
        const tuns = this.lab ? await ipJson<unknown[]>(['link', 'show', 'type', 'tun'], this.lab.where('srv')).catch(() => undefined) : undefined;
        const filters = left?.interfaces[0]?.ours.length;
        say(indent(`daemon stopped (exit ${exit.code ?? exit.signal}); our tc filters left: ${filters ?? '?'}; TUN devices left: ${tuns?.length ?? '?'}`));
      }
      await this.service?.stop().catch(() => {});
      await removeLab(this.lab, this.dir);
    })();
    return this.#teardown;
  }

  /** Last resort when the process is leaving without teardown() having finished. */
  destroyNow(): void {
    this.daemon?.child.kill('SIGKILL');
    removeLabNow(this.lab, this.labPending && { name: this.labName, roles: LAB_ROLES }, this.dir);
  }
}
