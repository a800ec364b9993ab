// Loads the WASM core and is the only TypeScript that knows where things
// sit in its memory: it asks the core for every offset after init().

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { L3dsrError } from '../errors.js';
import { VERDICT_COUNT, REASON_COUNT } from './abi.generated.js';

interface CoreExports {
  init(size: number, count: number): number;
  slotsBase(): number;
  slotIndexesBase(): number;
  lengthsBase(): number;
  resultsBase(): number;
  rewriteBatch(n: number): void;
  setVnetHeaderBytes(bytes: number): void;
  rewriteOne(len: number): number;
  countersBase(): number;
  resetCounters(): void;
  ruleScratchBase(): number;
  rulesBegin(): void;
  rulesAdd(family: number, dscp: number, prefixLength: number, setDscp: number, packets: bigint, bytes: bigint): number;
  rulesCommit(): void;
  ruleCount(): number;
  rulePackets(index: number): bigint;
  ruleBytes(index: number): bigint;
}

/** An instantiated core with its memory laid out and views on every region. */
export interface Core {
  exports: CoreExports;
  memory: WebAssembly.Memory;
  slotSize: number;
  slotCount: number;
  /** Byte offset of slot 0 in memory.buffer. */
  slotsBase: number;
  /** Byte offsets of the batch descriptor arrays (u32 each, slotCount entries). */
  slotIndexesOffset: number;
  lengthsOffset: number;
  resultsOffset: number;
  slotIndexes: Uint32Array;
  lengths: Uint32Array;
  results: Uint32Array;
  /** The bytes of every slot, back to back. */
  slotBytes: Uint8Array;
  /** u64 per verdict, then per reason. */
  counters: BigUint64Array;
  /** Two 16-byte address buffers read by rulesAdd: match at +0, destination at +16. */
  ruleScratch: Uint8Array;
}

export type CoreBuild = 'release' | 'coverage';

const modules = new Map<string, Promise<WebAssembly.Module>>();

/** Where a build of the core lives (dist/wasm/, next to this file's dist/src/core/). */
export function corePath(build: CoreBuild = 'release'): string {
  const file = build === 'release' ? 'core.wasm' : 'core.cov.wasm';
  return fileURLToPath(new URL(`../../wasm/${file}`, import.meta.url));
}

function compile(path: string): Promise<WebAssembly.Module> {
  let m = modules.get(path);
  if (m === undefined) {
    let bytes: Buffer;
    try {
      bytes = readFileSync(path);
    } catch (err) {
      throw new L3dsrError('ERR_L3DSR_NO_CORE', `WASM core not found at ${path}: run "npm run build"`, { cause: err });
    }
    m = WebAssembly.compile(bytes);
    modules.set(path, m);
  }
  return m;
}

export interface LoadOptions {
  slotSize: number;
  slotCount: number;
  build?: CoreBuild;
  /** Extra imports (the coverage build reports through one). */
  imports?: WebAssembly.Imports;
}

/** Compiles (once per process) and instantiates a core with its own memory. */
export async function loadCore(opts: LoadOptions): Promise<Core> {
  const { slotSize, slotCount } = opts;
  if (!Number.isInteger(slotSize) || slotSize < 64 || slotSize > 1 << 20) throw new RangeError(`slotSize must be 64..1048576, got ${slotSize}`);
  if (!Number.isInteger(slotCount) || slotCount < 1 || slotCount > 65536) throw new RangeError(`slotCount must be 1..65536, got ${slotCount}`);
  const module = await compile(corePath(opts.build));
  const memory = new WebAssembly.Memory({ initial: 1 });
  const instance = await WebAssembly.instantiate(module, { ...opts.imports, env: { memory, ...opts.imports?.env } });
  const exports = instance.exports as unknown as CoreExports;
  if (exports.init(slotSize, slotCount) !== 1) throw new RangeError(`cannot grow WASM memory for ${slotCount} slots of ${slotSize} bytes`);
  // The core never grows its memory after init, so these views stay valid.
  const buf = memory.buffer;
  const slotsBase = exports.slotsBase();
  const slotIndexesOffset = exports.slotIndexesBase();
  const lengthsOffset = exports.lengthsBase();
  const resultsOffset = exports.resultsBase();
  return {
    exports, memory, slotSize, slotCount, slotsBase, slotIndexesOffset, lengthsOffset, resultsOffset,
    slotIndexes: new Uint32Array(buf, slotIndexesOffset, slotCount),
    lengths: new Uint32Array(buf, lengthsOffset, slotCount),
    results: new Uint32Array(buf, resultsOffset, slotCount),
    slotBytes: new Uint8Array(buf, slotsBase, slotCount * slotSize),
    counters: new BigUint64Array(buf, exports.countersBase(), VERDICT_COUNT + REASON_COUNT),
    ruleScratch: new Uint8Array(buf, exports.ruleScratchBase(), 32),
  };
}
