// Corpus and crash files: the committed seed corpus (test/fuzz/corpus/*.bin,
// *.vnet.bin with a virtio-net header first) and saved violations
// (test/fuzz/crashes/<hash>.bin + <hash>.json), which
// test/fuzz-regressions.test.ts replays.

import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { slotContent, type FuzzInput } from './harness.js';
import type { Violation } from './invariants.js';
import { VNET_HEADER_BYTES } from './vnet.js';

/** The repository root, from dist/tools/fuzz/ (compiled) where this module runs. */
export const repoRoot = fileURLToPath(new URL('../../../', import.meta.url));
export const defaultCorpusDir = join(repoRoot, 'test', 'fuzz', 'corpus');
export const defaultCrashDir = join(repoRoot, 'test', 'fuzz', 'crashes');

export function hashOf(input: FuzzInput): string {
  const h = createHash('sha256').update(slotContent(input));
  if (input.vnet) h.update(`vnet${input.vnet.length}`);
  if (input.descriptor) h.update(input.descriptor);
  return h.digest('hex').slice(0, 16);
}

// A corpus file whose name ends so holds a virtio-net header, then the packet.
const VNET_SUFFIX = '.vnet.bin';

/** The input a corpus file holds. */
export function inputOf(file: CorpusFile): FuzzInput {
  if (!file.name.endsWith(VNET_SUFFIX)) return { bytes: file.bytes };
  const cut = Math.min(VNET_HEADER_BYTES, file.bytes.length);
  return { vnet: file.bytes.slice(0, cut), bytes: file.bytes.slice(cut) };
}

/** `<stem>.bin`, or `<stem>.vnet.bin` for an input with a virtio-net header. */
export function corpusFileName(stem: string, input: FuzzInput): string {
  return `${stem}${input.vnet ? VNET_SUFFIX : '.bin'}`;
}

export interface CorpusFile {
  name: string;
  bytes: Uint8Array;
}

/** Every *.bin of `dir`, by name; none if the directory does not exist. */
export function loadCorpus(dir: string): CorpusFile[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((n) => n.endsWith('.bin')).sort()
    .map((name) => ({ name, bytes: new Uint8Array(readFileSync(join(dir, name))) }));
}

export function writeCorpusFile(dir: string, stem: string, input: FuzzInput): string {
  mkdirSync(dir, { recursive: true });
  const path = join(dir, corpusFileName(stem, input));
  writeFileSync(path, slotContent(input));
  return path;
}

/** What a crash file's .json says. */
export interface CrashRecord {
  /** The first violation's kind, for a quick look. */
  kind: string;
  violations: Violation[];
  /** Set when the input was a lying batch descriptor rather than a packet. */
  descriptor?: FuzzInput['descriptor'];
  /** Set when the .bin starts with a virtio-net header of this many bytes (vnet mode). */
  vnetHeaderBytes?: number;
  /** Campaign seed and input number that found it. */
  seed?: number;
  input?: number;
}

export interface CrashFile {
  name: string;
  input: FuzzInput;
  record: CrashRecord;
}

/** Saves the input and its violations as <hash>.bin/.json; returns the .bin path. */
export function saveCrash(dir: string, input: FuzzInput, violations: readonly Violation[], meta: { seed?: number; input?: number } = {}): string {
  mkdirSync(dir, { recursive: true });
  const name = hashOf(input);
  const record: CrashRecord = { kind: violations[0]?.kind ?? 'unknown', violations: [...violations], ...meta };
  if (input.descriptor) record.descriptor = input.descriptor;
  if (input.vnet) record.vnetHeaderBytes = input.vnet.length;
  writeFileSync(join(dir, `${name}.bin`), slotContent(input));
  writeFileSync(join(dir, `${name}.json`), JSON.stringify(record, null, 2) + '\n');
  return join(dir, `${name}.bin`);
}

export function loadCrashes(dir: string): CrashFile[] {
  return loadCorpus(dir).map(({ name, bytes }) => {
    const jsonPath = join(dir, name.replace(/\.bin$/, '.json'));
    const record: CrashRecord = existsSync(jsonPath) ? JSON.parse(readFileSync(jsonPath, 'utf8')) : { kind: 'unknown', violations: [] };
    const cut = record.vnetHeaderBytes ?? 0;
    const input: FuzzInput = { bytes: bytes.slice(cut), descriptor: record.descriptor };
    if (record.vnetHeaderBytes !== undefined) input.vnet = bytes.slice(0, cut);
    return { name, input, record };
  });
}
