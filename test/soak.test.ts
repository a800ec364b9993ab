// A soak under faults, short enough for every push (test/support/soak.ts
// has the whole story; `npm run soak -- --minutes 5` is the long one): about
// a minute of numbered UDP datagrams to the four VIPs while the daemon, under
// a supervisor that restarts it as systemd would, is killed (also during its
// start-up), loses its TUN, reloads good and bad configurations and has its
// /metrics flooded. Every datagram must arrive once and whole or be lost
// inside a measured down window, and nothing may be left behind. The seed
// is printed; L3DSR_SOAK_SEED=N replays the same faults (their timing
// against the daemon's start-up still varies). Needs root.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { requireLabRoot } from './support/daemon.js';
import { privileged } from './support/privilege.js';
import { FAULT_KINDS, formatReport, runSoak, soakSeed } from './support/soak.js';

/** A bound on a hang, far above the minute or two it takes. */
const BOUND_MS = 10 * 60_000;

describe('a soak under faults', privileged('builds a lab and runs the daemon under injected faults'), () => {
  it('every fault kind at least twice, for 45 s at least: each datagram delivered once and whole or lost inside a down window; nothing left behind', { timeout: BOUND_MS }, async (t) => {
    requireLabRoot();
    const seed = soakSeed(process.env.L3DSR_SOAK_SEED);
    t.diagnostic(`seed ${seed} (L3DSR_SOAK_SEED=${seed} replays these faults)`);
    const lines: string[] = [];
    const report = await runSoak({ seconds: 45, minRounds: 2, rate: 2000, seed, log: (l) => lines.push(l) });
    for (const l of [...lines, ...formatReport(report).split('\n')]) t.diagnostic(l);
    assert.deepEqual(report.problems, [], `the daemons' logs:\n${report.logs}`);
    // The soak saw what it claims: every kind injected, and the outages cost datagrams (the traffic went through the daemon).
    for (const kind of FAULT_KINDS) assert.ok(report.faults.filter((f) => f.kind === kind).length >= 2, kind);
    const outages = report.faults.filter((f) => ['kill', 'kill-in-startup', 'tun-deleted'].includes(f.kind)).length;
    assert.equal(report.windows.length, outages);
    for (const [i, w] of report.traffic.windows.entries()) assert.ok(w.lost > 0, `down window ${i} (${report.windows[i]!.cause}) lost nothing: did the traffic pass the daemon?`);
    assert.equal(report.traffic.delivered + report.traffic.lost, report.traffic.sent);
  });
});
