// The coverage build's edge map (written by scripts/coverage.mjs next to
// dist/wasm/core.cov.wasm) and the record of which edges a campaign has hit.

import { readFileSync } from 'node:fs';
import { corePath } from '../../src/core/loader.js';
import { L3dsrError } from '../../src/errors.js';

export type EdgeKind = 'entry' | 'true' | 'false' | 'case' | 'default';

/** One counter of the coverage build and the source place it stands for. */
export interface Edge {
  id: number;
  file: string;
  line: number;
  column: number;
  function: string;
  kind: EdgeKind;
  text: string;
}

export function coverageMapPath(): string {
  return corePath('coverage').replace(/\.wasm$/, '.json');
}

export function loadCoverageMap(path = coverageMapPath()): Edge[] {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    throw new L3dsrError('ERR_L3DSR_COVERAGE_BUILD', `coverage map not found at ${path}: run "npm run build" (scripts/coverage.mjs)`, { cause: err });
  }
  return (JSON.parse(text) as { edges: Edge[] }).edges;
}

/** A branch outcome, as opposed to a function entry. */
export function isBranch(e: Edge): boolean {
  return e.kind !== 'entry';
}

export interface CoverageSummary {
  edges: number;
  totalEdges: number;
  branches: number;
  totalBranches: number;
}

/** The edges hit so far, fed with the counter region of the coverage build after each run. */
export class CoverageTracker {
  readonly hit: Uint8Array;

  constructor(readonly map: readonly Edge[]) {
    this.hit = new Uint8Array(map.length);
  }

  /** True when `counters` hit an edge not hit before. */
  hasNew(counters: Uint32Array): boolean {
    const { hit } = this;
    for (let i = 0; i < hit.length; i++) if (counters[i] !== 0 && hit[i] === 0) return true;
    return false;
  }

  /** Records what `counters` hit; returns how many edges were new. */
  merge(counters: Uint32Array): number {
    const { hit } = this;
    let added = 0;
    for (let i = 0; i < hit.length; i++) {
      if (counters[i] !== 0 && hit[i] === 0) {
        hit[i] = 1;
        added++;
      }
    }
    return added;
  }

  summary(): CoverageSummary {
    let edges = 0, branches = 0, totalBranches = 0;
    this.map.forEach((e, i) => {
      edges += this.hit[i];
      if (isBranch(e)) {
        totalBranches++;
        branches += this.hit[i];
      }
    });
    return { edges, totalEdges: this.map.length, branches, totalBranches };
  }

  /** Branch outcomes hit per source file. */
  byFile(): { file: string; branches: number; totalBranches: number }[] {
    const files = new Map<string, { file: string; branches: number; totalBranches: number }>();
    this.map.forEach((e, i) => {
      if (!isBranch(e)) return;
      const f = files.get(e.file) ?? { file: e.file, branches: 0, totalBranches: 0 };
      f.totalBranches++;
      f.branches += this.hit[i];
      files.set(e.file, f);
    });
    return [...files.values()].sort((a, b) => a.file.localeCompare(b.file));
  }

  unreached(): Edge[] {
    return this.map.filter((_, i) => this.hit[i] === 0);
  }
}

export function formatEdge(e: Edge): string {
  return `${e.file}:${e.line}:${e.column} ${e.function}() ${e.kind}: ${e.text}`;
}

export function percent(n: number, of: number): string {
  return of === 0 ? '-' : `${((100 * n) / of).toFixed(1)}%`;
}
