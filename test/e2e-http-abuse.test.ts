// The daemon's HTTP endpoints under abuse, with the real daemon in the lab:
// /metrics on TCP (--metrics on srv's address, flooded from cli) and the
// control socket (flooded from this host). Clients that pipeline requests
// without reading the answers once grew the daemon to gigabytes and kept it
// from answering for minutes; now its memory stays bounded and an ordinary
// scrape is answered during the flood and right after it.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { LAB_PLAN, Lab } from '../tools/lab/index.js';
import { LabDaemon, daemonArgs, metric, requireLabRoot, waitFor } from './support/daemon.js';
import { httpGet, memoryOf, rawExchange, startHttpFlood, type ClientPlace, type HttpTarget } from './support/http-flood.js';
import { privileged } from './support/privilege.js';

const METRICS_PORT = 9109;
const FLOOD_SECONDS = 12;
const FLOOD_CONNECTIONS = 4;
/** The bound of the task: the daemon idles at about 75 MB. */
const MAX_RSS = 200 * 1024 * 1024;
/** A generous bound on one ordinary request: a bound on a hang, not a speed. */
const ANSWER_MS = 5000;
const MB = (bytes: number) => `${(bytes / 1024 / 1024).toFixed(0)} MB`;

describe('l3dsr run in the lab: the HTTP endpoints under abuse', privileged('builds a lab and runs the daemon in it'), () => {
  let lab: Lab;
  let daemon: LabDaemon;
  let tcp: HttpTarget;
  let cli: ClientPlace;
  let control: HttpTarget;

  before(async () => {
    requireLabRoot();
    lab = await Lab.create();
    // On srv's address on the direct link: cli reaches it like a Prometheus on another host.
    tcp = { host: LAB_PLAN[4].serverDirect, port: METRICS_PORT };
    cli = { lab, role: 'cli' };
    daemon = await LabDaemon.start(lab, daemonArgs({ vips: lab.vips, extra: ['--metrics', `${tcp.host}:${tcp.port}`] }));
    control = { path: daemon.controlSocket };
  });

  after(async () => {
    if (daemon?.running) await daemon.stop();
    await lab?.destroy();
  });

  /**
   * An ordinary scrape over TCP and an ordinary `l3dsr status` request, at
   * the same time: what went wrong (nothing when both were answered, with
   * the right body), and the /metrics page.
   */
  async function ordinaryRequests(context: string): Promise<{ problems: string[]; page?: string }> {
    const [m, s] = await Promise.all([httpGet(tcp, '/metrics', ANSWER_MS, cli), httpGet(control, '/status', ANSWER_MS)]);
    const problems: string[] = [];
    if ('error' in m || m.status !== 200) problems.push(`${context}: GET /metrics over TCP: ${JSON.stringify(m).slice(0, 300)}`);
    else if (!m.body.split('\n').includes(`l3dsr_rules ${lab.vips.length}`)) problems.push(`${context}: /metrics without l3dsr_rules ${lab.vips.length}`);
    if ('error' in s || s.status !== 200) problems.push(`${context}: GET /status on the control socket: ${JSON.stringify(s).slice(0, 300)}`);
    else if ((JSON.parse(s.body) as { pid: number }).pid !== daemon.pid) problems.push(`${context}: /status of another pid`);
    return { problems, page: 'error' in m ? undefined : m.body };
  }

  it(`${FLOOD_CONNECTIONS} connections pipelining GET /metrics over TCP and ${FLOOD_CONNECTIONS} pipelining GET /status on the control socket, ${FLOOD_SECONDS} s: under 200 MB, ordinary requests answered during and after`, async (t) => {
    const before = memoryOf(daemon.pid);
    const floods = [
      startHttpFlood({ target: tcp, connections: FLOOD_CONNECTIONS, seconds: FLOOD_SECONDS }, cli),
      startHttpFlood({ target: control, path: '/status', connections: FLOOD_CONNECTIONS, seconds: FLOOD_SECONDS }),
    ];
    let over = false;
    const results = Promise.all(floods.map((f) => f.result)).finally(() => { over = true; });
    const problems: string[] = [];
    let rounds = 0;
    let answered = 0;
    let highest = before.rss;
    while (!over) {
      const r = await ordinaryRequests(`during the flood (round ${++rounds})`);
      problems.push(...r.problems);
      if (!r.problems.length) answered++;
      highest = Math.max(highest, memoryOf(daemon.pid).rss);
    }
    const [overTcp, overSocket] = await results;
    if ('error' in overTcp || 'error' in overSocket) assert.fail(`a flood failed: ${JSON.stringify([overTcp, overSocket])}`);
    const afterwards = await ordinaryRequests('right after the flood');
    problems.push(...afterwards.problems);
    const mem = memoryOf(daemon.pid);
    t.diagnostic(`before ${MB(before.rss)}; highest sampled during the flood ${MB(highest)}; VmHWM ${MB(mem.peak)}; `
      + `${answered} of ${rounds} rounds of ordinary requests answered during it; `
      + `TCP flood ${JSON.stringify(overTcp)}, control-socket flood ${JSON.stringify(overSocket)}`);
    // Each flood wrote far more requests than the daemon may hold.
    assert.ok(overTcp.requests > 10_000 && overSocket.requests > 10_000, `the floods were too weak to test anything: ${JSON.stringify([overTcp, overSocket])}`);
    assert.deepEqual(problems, [], 'ordinary requests went unanswered');
    assert.ok(mem.peak < MAX_RSS, `the daemon's resident memory reached ${MB(mem.peak)} (VmHWM)`);
    // The floods were cut, and counted, per endpoint.
    for (const endpoint of ['metrics', 'control']) {
      assert.ok(metric(afterwards.page!, 'l3dsr_http_rejected_total', { endpoint, reason: 'pipelined' }) > 0, `no pipelining connection cut on ${endpoint}`);
    }
  });

  it('a client that opens a connection and sends half a request is answered 408 and cut after the headers timeout, and counted', async () => {
    const r = await rawExchange(tcp, 'GET /metrics HTTP/1.1\r\nHost: l3dsr\r\n', 15_000, cli);
    if ('error' in r) assert.fail(r.error);
    assert.ok(r.closed, `the connection was still open after 15 s; received ${JSON.stringify(r.received)}`);
    assert.match(r.received, /^HTTP\/1\.1 408 /);
    await waitFor('the timeout to be counted', ANSWER_MS, async () => {
      const page = await daemon.metrics();
      return metric(page, 'l3dsr_http_rejected_total', { endpoint: 'metrics', reason: 'timeout' }) > 0 ? true : undefined;
    });
  });

  it('a GET with a body is refused (413) and its connection closed, on TCP and on the control socket, and counted', async () => {
    for (const [target, from] of [[tcp, cli], [control, undefined]] as const) {
      const r = await rawExchange(target, 'GET /metrics HTTP/1.1\r\nHost: l3dsr\r\nContent-Length: 100000\r\n\r\nxxxx', ANSWER_MS, from);
      if ('error' in r) assert.fail(r.error);
      assert.match(r.received, /^HTTP\/1\.1 413 /, JSON.stringify(r));
      assert.ok(r.closed, `the connection stayed open: ${JSON.stringify(r)}`);
    }
    await waitFor('the refusals to be counted', ANSWER_MS, async () => {
      const page = await daemon.metrics();
      const counted = ['metrics', 'control'].every((endpoint) => metric(page, 'l3dsr_http_rejected_total', { endpoint, reason: 'body' }) > 0);
      return counted ? true : undefined;
    });
  });

  it('stops cleanly afterwards', async () => {
    assert.deepEqual(await daemon.stop(), { code: 0, signal: null }, daemon.log);
  });
});
