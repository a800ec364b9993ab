// The Prometheus text exposition of a daemon snapshot.

import { REASON_BALANCER_ONLY, REASON_NAMES, REASON_VERDICTS, VERDICT_NAMES } from '../core/abi.generated.js';
import { ruleText } from '../core/rules.js';
import type { DaemonSnapshot } from '../daemon/snapshot.js';

type Labels = Record<string, string | number>;

function labels(l: Labels): string {
  const parts = Object.entries(l).map(([k, v]) => `${k}="${String(v).replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n')}"`);
  return parts.length ? `{${parts.join(',')}}` : '';
}

class Exposition {
  readonly lines: string[] = [];
  family(name: string, type: 'counter' | 'gauge' | 'histogram', help: string, samples: [Labels, number | bigint][]): void {
    this.lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [l, v] of samples) this.lines.push(`${name}${labels(l)} ${v}`);
  }
  raw(line: string): void { this.lines.push(line); }
  text(): string { return `${this.lines.join('\n')}\n`; }
}

const BACKEND_STATES = ['up', 'down', 'draining'] as const;

/** l3dsr lb: per backend of each [lb] section, and the connection table. */
function balancerMetrics(e: Exposition, s: DaemonSnapshot): void {
  const backends = s.balancer!.vips.flatMap((v) => v.backends.map((b) => ({ v, b, l: { vip: v.name, backend: b.address } as Labels })));
  e.family('l3dsr_lb_backend_packets_total', 'counter', 'Packets balanced to a backend.', backends.map(({ l, b }) => [l, b.packets]));
  e.family('l3dsr_lb_backend_state', 'gauge', 'A backend\'s state: 1 for the one it is in (up, down: its health check failed, draining: drain or weight 0).',
    backends.flatMap(({ l, b }) => BACKEND_STATES.map((state): [Labels, number] => [{ ...l, state }, b.state === state ? 1 : 0])));
  e.family('l3dsr_lb_backend_weight', 'gauge', 'A backend\'s configured weight.', backends.map(({ l, b }) => [l, b.weight]));
  e.family('l3dsr_lb_backend_table_share', 'gauge', 'A backend\'s share of its section\'s Maglev table: the share of new flows it takes.',
    backends.map(({ l, v, b }) => [l, b.slots / v.tableSize]));
  const checked = backends.filter(({ b }) => b.health !== undefined);
  e.family('l3dsr_lb_health_checks_total', 'counter', 'Health checks of a backend, by result (up: answered from the VIP; refused, timeout, error).',
    checked.flatMap(({ l, b }) => Object.entries(b.health!.checks).map(([result, n]): [Labels, number] => [{ ...l, result }, n])));
  e.family('l3dsr_lb_health_transitions_total', 'counter', 'Times a backend\'s health checks took it down or brought it up, by direction.',
    checked.flatMap(({ l, b }) => Object.entries(b.health!.transitions).map(([direction, n]): [Labels, number] => [{ ...l, direction }, n])));
  e.family('l3dsr_lb_connection_evictions_total', 'counter', 'Connection-table entries pushed out of a full bucket by a new flow.',
    s.queues.map((q) => [{ queue: q.queue }, q.counters.evictions ?? 0n]));
}

export function renderMetrics(s: DaemonSnapshot): string {
  const e = new Exposition();
  const rules = s.rules.map((rule, i) => ({
    rule, l: { rule: ruleText(rule), family: `ipv${rule.family}`, dscp: rule.dscp, vip: rule.destination } as Labels, i,
  }));
  const sumRule = (i: number, k: 'packets' | 'bytes') => s.queues.reduce((n, q) => n + (q.counters.rules[i]?.[k] ?? 0n), 0n);
  e.family('l3dsr_rule_packets_total', 'counter', 'Packets rewritten by a rule.', rules.map(({ l, i }) => [l, sumRule(i, 'packets')]));
  e.family('l3dsr_rule_bytes_total', 'counter', 'Bytes (IP length) rewritten by a rule.', rules.map(({ l, i }) => [l, sumRule(i, 'bytes')]));
  e.family('l3dsr_packets_total', 'counter', 'Packets read from the TUN, by verdict.',
    VERDICT_NAMES.map((v) => [{ verdict: v }, s.queues.reduce((n, q) => n + q.counters.verdicts[v], 0n)]));
  for (const verdict of ['dropped', 'malformed'] as const) {
    const reasons = REASON_NAMES.filter((_, i) => REASON_VERDICTS[i] === verdict && (s.command === 'lb' || !REASON_BALANCER_ONLY[i]));
    e.family(`l3dsr_${verdict}_total`, 'counter', `Packets ${verdict}, by reason.`,
      reasons.map((r) => [{ reason: r }, s.queues.reduce((n, q) => n + (q.counters.reasons[r] ?? 0n), 0n)]));
  }
  const perQueue = (name: string, type: 'counter' | 'gauge', help: string, pick: (q: DaemonSnapshot['queues'][number]) => number) =>
    e.family(name, type, help, s.queues.map((q) => [{ queue: q.queue }, pick(q)]));
  perQueue('l3dsr_tun_packets_read_total', 'counter', 'Packets read from the TUN queue.', (q) => q.tun.packetsRead);
  perQueue('l3dsr_tun_packets_written_total', 'counter', 'Packets written back into the TUN queue.', (q) => q.tun.packetsWritten);
  perQueue('l3dsr_tun_write_errors_total', 'counter', 'Writes into the TUN that failed (packet lost).', (q) => q.tun.writeErrors + q.tun.writeDrops);
  perQueue('l3dsr_tun_read_errors_total', 'counter', 'Reads from the TUN that failed.', (q) => q.tun.readErrors);
  perQueue('l3dsr_tun_batches_total', 'counter', 'Batches handed to the rewrite core.', (q) => q.tun.batches);
  perQueue('l3dsr_tun_gso_packets_total', 'counter', 'Reads from the TUN queue that were GSO super-packets (offload on).', (q) => q.tun.gsoPackets);
  perQueue('l3dsr_tun_gso_segments_total', 'counter', 'MTU-sized segments the GSO super-packets stood for.', (q) => q.tun.gsoSegments);
  e.family('l3dsr_tun_kernel_tx_dropped_total', 'counter',
    'Packets the kernel dropped at the TUN because the daemon did not read fast enough (tx_dropped of the TUN).',
    s.kernelTxDropped === undefined ? [] : [[{ tun: s.tun }, s.kernelTxDropped]]);

  // Batch sizes: the addon counts batches per power-of-two bucket.
  e.raw('# HELP l3dsr_batch_size Packets per batch handed to the core.');
  e.raw('# TYPE l3dsr_batch_size histogram');
  for (const q of s.queues) {
    let cum = 0;
    q.tun.batchSizeLog2.forEach((n, k) => {
      cum += n;
      e.raw(`l3dsr_batch_size_bucket${labels({ queue: q.queue, le: 2 ** (k + 1) - 1 })} ${cum}`);
    });
    e.raw(`l3dsr_batch_size_bucket${labels({ queue: q.queue, le: '+Inf' })} ${q.tun.batches}`);
    // Every packet read is in exactly one batch.
    e.raw(`l3dsr_batch_size_sum${labels({ queue: q.queue })} ${q.tun.packetsRead}`);
    e.raw(`l3dsr_batch_size_count${labels({ queue: q.queue })} ${q.tun.batches}`);
  }
  if (s.balancer) balancerMetrics(e, s);
  e.family('l3dsr_rules', 'gauge', 'Rules loaded.', [[{}, s.rules.length]]);
  e.family('l3dsr_reloads_total', 'counter', 'Configuration reloads, by result.', [[{ result: 'ok' }, s.reloads.ok], [{ result: 'error' }, s.reloads.failed]]);
  e.family('l3dsr_start_time_seconds', 'gauge', 'When the daemon started (Unix time).', [[{}, Math.floor(s.startedAt / 1000)]]);
  e.family('l3dsr_http_rejected_total', 'counter', 'Connections and requests the HTTP endpoints refused or cut, by endpoint and reason.',
    Object.entries(s.httpRejected ?? {}).flatMap(([endpoint, reasons]) => Object.entries(reasons).map(([reason, n]): [Labels, number] => [{ endpoint, reason }, n])));
  e.family('l3dsr_queue_info', 'gauge', 'The I/O engine of each TUN queue.', s.queues.map((q) => [{ queue: q.queue, engine: q.mode ?? 'none' }, 1]));
  return e.text();
}
