// What a queue worker runs on each batch: the real server's rewrite or the
// balancer's Maglev data path. Both are one WASM core working in place on
// the slots the TUN addon fills; the worker (queue-worker.ts) drives either
// through this one shape, so there is one worker, not a copy per command.

import { createBalancer } from '../core/balancer.js';
import { createRewriter } from '../core/rewriter.js';
import type { SlotBatch } from '../core/loader.js';
import type { Rule } from '../core/types.js';
import type { LbVip } from '../lb/types.js';
import type { QueueCounters } from './snapshot.js';

/** What a core is configured with: a reload sends a new one of the same kind. */
export type PathConfig =
  | { kind: 'rewrite'; rules: Rule[] }
  | {
    kind: 'balance'; vips: LbVip[]; connections: number;
    /** Backends whose health check failed, as [section, address]: they take no new flows, and theirs move. */
    down: [string, string][];
  };

export interface PathSetup {
  slotSize: number;
  slotCount: number;
  vnetHeaderBytes: 0 | 10 | 12;
}

export interface DataPath {
  readonly memory: WebAssembly.Memory;
  readonly batch: SlotBatch;
  /** One core call for batch entries 0..n-1. */
  run(n: number): void;
  /** A new configuration of the same kind, atomic: on a throw the old one stays. */
  configure(config: PathConfig): void;
  counters(): QueueCounters;
}

const wrongKind = (want: string, got: PathConfig): Error => new Error(`a ${want} data path cannot take a ${got.kind} configuration`);

/** Loads the core `config` asks for, configured with it. */
export async function openDataPath(config: PathConfig, setup: PathSetup): Promise<DataPath> {
  if (config.kind === 'rewrite') {
    const rw = await createRewriter({ rules: config.rules, ...setup });
    return {
      memory: rw.memory,
      batch: rw.batch,
      run: (n) => rw.rewriteSlots(n),
      configure: (c) => { if (c.kind !== 'rewrite') throw wrongKind('rewrite', c); rw.setRules(c.rules); },
      counters: () => {
        const c = rw.counters();
        return { verdicts: c.verdicts, reasons: c.reasons, rules: c.rules.map((r) => ({ packets: r.packets, bytes: r.bytes })) };
      },
    };
  }
  const downOf = (c: { down: [string, string][] }): Map<string, Set<string>> => {
    const m = new Map<string, Set<string>>();
    for (const [section, address] of c.down) m.set(section, (m.get(section) ?? new Set()).add(address));
    return m;
  };
  const lb = await createBalancer({ vips: config.vips, connections: config.connections, ...setup });
  if (config.down.length > 0) lb.configure(config.vips, downOf(config));
  return {
    memory: lb.memory,
    batch: lb.batch,
    run: (n) => lb.balanceSlots(n),
    // The connection table outlives a reload (its size is the core's layout, fixed at start).
    configure: (c) => { if (c.kind !== 'balance') throw wrongKind('balance', c); lb.configure(c.vips, downOf(c)); },
    counters: () => {
      const c = lb.counters();
      return { verdicts: c.verdicts, reasons: c.reasons, rules: [], evictions: c.evictions, backends: c.backends };
    },
  };
}
