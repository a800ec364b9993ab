// `l3dsr status`: asks a running daemon (over its control socket) for its
// VIPs (what is really on lo and steered), rules, counters and steering, and
// prints them.

import { request } from 'node:http';
import { parseArgs } from 'node:util';
import { ruleText } from '../core/rules.js';
import { DEFAULT_SETTINGS } from '../daemon/options.js';
import { controlSocketPath } from '../daemon/runtime-dir.js';
import type { DaemonSnapshot } from '../daemon/snapshot.js';
import { EXIT, L3dsrError } from '../errors.js';
import { flagsProblem } from './flags.js';
import { table } from './table.js';
import { interfaceNameProblem } from '../system/interface-name.js';

const USAGE = 'usage: l3dsr status [--tun NAME | --control-socket PATH] [--json | --metrics]';

/** The flags of `l3dsr status` (the dispatcher reads them to find --help). */
export const STATUS_OPTIONS = {
  tun: { type: 'string' }, 'control-socket': { type: 'string' }, json: { type: 'boolean' }, metrics: { type: 'boolean' },
} as const;

export const STATUS_HELP = `${USAGE}

Asks a running daemon, over its control socket, for its rules with their
counters, its queues and its steering, and prints them.

      --tun NAME             the daemon of this TUN (default dsr0; l3dsr lb's default is lb0),
                             at /run/l3dsr/NAME.netns-INODE.sock (INODE: this network
                             namespace's; $RUNTIME_DIRECTORY in place of /run/l3dsr)
      --control-socket PATH  the socket the daemon was given with l3dsr run --control-socket
      --json                 the daemon's /status document, as JSON
      --metrics              the Prometheus exposition (/metrics)
  -h, --help                 this text

Exit status: 0 printed; 1 no daemon listens on the socket, or it answered
with an error; 2 bad usage.
`;

function get(socketPath: string, path: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = request({ socketPath, path, method: 'GET' }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => { body += c; });
      res.on('end', () => (res.statusCode === 200 ? resolve(body) : reject(new L3dsrError('ERR_L3DSR_CONTROL', `${path}: HTTP ${res.statusCode}: ${body.trim()}`))));
    });
    req.on('error', reject);
    req.end();
  });
}

export async function statusCommand(argv: string[]): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: STATUS_OPTIONS, strict: true, tokens: true });
  } catch (err) {
    process.stderr.write(`l3dsr status: ${(err as Error).message}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const flagProblem = flagsProblem(parsed.tokens, STATUS_OPTIONS, [['json', 'metrics', 'are alternatives'], ['tun', 'control-socket', 'are alternatives']]);
  if (flagProblem) {
    process.stderr.write(`l3dsr status: ${flagProblem}\n${USAGE}\n`);
    return EXIT.usage;
  }
  const v = parsed.values;
  const tun = v.tun ?? DEFAULT_SETTINGS.tun;
  const problem = interfaceNameProblem(tun);
  if (problem) {
    process.stderr.write(`l3dsr status: --tun: ${problem.message}\n`);
    return EXIT.usage;
  }
  // The default socket is named after this process's network namespace: the daemon's, when run where it runs.
  const socket = v['control-socket'] ?? controlSocketPath(tun);
  let body: string;
  try {
    body = await get(socket, v.metrics ? '/metrics' : '/status');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    const why = code === 'ENOENT' || code === 'ECONNREFUSED' ? `no l3dsr daemon is listening on ${socket}` : (err as Error).message;
    process.stderr.write(`l3dsr status: ${why}\n`);
    return EXIT.failure;
  }
  if (v.json || v.metrics) {
    process.stdout.write(body.endsWith('\n') ? body : `${body}\n`);
    return EXIT.ok;
  }
  process.stdout.write(formatStatus(JSON.parse(body) as DaemonSnapshot));
  return EXIT.ok;
}

/** The human-readable status (numbers arrive as decimal strings in the JSON). */
export function formatStatus(s: DaemonSnapshot): string {
  const n = (x: unknown) => BigInt(x as string);
  const sum = (f: (q: DaemonSnapshot['queues'][number]) => unknown) => s.queues.reduce((t, q) => t + n(f(q)), 0n);
  const lines: string[] = [];
  lines.push(`l3dsr pid ${s.pid} on ${s.tun}, up ${Math.round((Date.now() - s.startedAt) / 1000)} s${s.configPaths.length ? `, config ${s.configPaths.join(', ')}` : ''}`);
  lines.push(`queues: ${s.queues.map((q) => `${q.queue}: ${q.mode}${q.detail ? ` (${q.detail})` : ''}`).join('; ')}`);
  const offloads = s.queues[0]?.offloads;
  lines.push(`offloads: ${offloads ? offloads.join(', ') || 'none granted' : 'off'}`);
  if (s.vips) {
    lines.push('', ...table([
      ['type', 'state', 'VIP', 'DSCP', 'on lo', 'steering', 'source'],
      ...s.vips.map((v) => [v.type, v.state, v.vip, v.dscp === null ? '--' : String(v.dscp), v.onLo ? 'yes' : 'no', v.steering ?? '--', v.source]),
    ]));
  }
  if (s.balancer) {
    const percent = (slots: number, size: number) => `${(100 * slots / size).toFixed(1)} %`;
    lines.push('', ...table([
      ['section', 'VIP', 'DSCP', 'backend', 'state', 'weight', 'table share', 'packets'],
      ...s.balancer.vips.flatMap((v) => v.backends.map((b) => [
        v.name, v.ports ? `${v.vip} ${v.ports.join(',')}` : v.vip, String(v.dscp), b.address, b.state, String(b.weight), percent(b.slots, v.tableSize), String(b.packets),
      ])),
    ], [5, 6, 7]));
    lines.push(`connection table: ${s.balancer.connections} entries per queue, evictions ${sum((q) => q.counters.evictions ?? 0)}`);
  }
  if (s.command !== 'lb') lines.push('', ...table([
    ['rule', 'packets', 'bytes'],
    ...s.rules.map((r, i) => [ruleText(r), String(sum((q) => q.counters.rules[i]?.packets ?? 0)), String(sum((q) => q.counters.rules[i]?.bytes ?? 0))]),
  ], [1, 2]));
  lines.push('', 'verdicts: ' + (['rewritten', 'passed', 'malformed', 'dropped'] as const).map((v) => `${v} ${sum((q) => q.counters.verdicts[v])}`).join(', '));
  const reasons = Object.keys(s.queues[0]?.counters.reasons ?? {}).map((r) => [r, sum((q) => q.counters.reasons[r])] as const).filter(([, c]) => c > 0n);
  if (reasons.length) lines.push(`reasons: ${reasons.map(([r, c]) => `${r} ${c}`).join(', ')}`);
  lines.push(`tun: read ${s.queues.reduce((t, q) => t + q.tun.packetsRead, 0)}, written ${s.queues.reduce((t, q) => t + q.tun.packetsWritten, 0)}, write errors ${s.queues.reduce((t, q) => t + q.tun.writeErrors + q.tun.writeDrops, 0)}, kernel tx_dropped ${s.kernelTxDropped ?? '?'}`);
  lines.push(`reloads: ${s.reloads.ok} ok, ${s.reloads.failed} refused${s.reloads.lastError ? ` (last: ${s.reloads.lastError})` : ''}`);
  lines.push(`steering: ${s.steering.mode === 'tc' ? `tc ingress redirect on ${s.steering.interfaces.join(', ')}` : 'none (--no-steer)'}`);
  // The real server steers by DSCP, the balancer by destination (a VIP).
  type Ours = { family: number; priority: number } & ({ dscp: number } | { destination: string });
  const st = s.steering.status as { interfaces?: { name: string; ours?: Ours[] }[] } | undefined;
  const match = (f: Ours) => ('destination' in f ? `to ${f.destination}` : `dscp ${f.dscp}`);
  for (const i of st?.interfaces ?? []) {
    lines.push(`  ${i.name}: ${(i.ours ?? []).map((f) => `ipv${f.family} ${match(f)} (prio ${f.priority})`).join(', ') || 'no filters of ours'}`);
  }
  if (s.loopbackVips.length) lines.push(`VIPs added to lo: ${s.loopbackVips.join(', ')}`);
  for (const w of s.warnings) lines.push(`warning: ${w}`);
  return `${lines.join('\n')}\n`;
}
