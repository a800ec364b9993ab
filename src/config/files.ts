// Which files a --config path stands for, and reading them with a bound.
// A path is a file, or a directory whose *.conf files are read in byte
// order of their names (as dsrctl reads /etc/dsr.d under LC_ALL=C).
// Anything that is not a regular file is refused when opened: a FIFO or
// /dev/zero has no size to check first, so every read is bounded instead.

import { constants } from 'node:fs';
import { open, opendir, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError } from './parse.js';

/** One file's limit: a dsr.conf line is ~20 bytes, 1024 rules fit in a few dozen KiB. */
export const MAX_CONFIG_FILE_BYTES = 1 << 20;
/** All files of one load together. */
export const MAX_CONFIG_BYTES = 4 << 20;
/** *.conf files of one load together. */
export const MAX_CONFIG_FILES = 1024;

const MIB = 1 << 20;

/** A file's text as read, or the directory that held no *.conf file. */
export type ConfigSource = { file: string; text: string } | { emptyDirectory: string };

const KIND_OF: [(s: import('node:fs').Stats) => boolean, string][] = [
  [(s) => s.isFIFO(), 'a FIFO'], [(s) => s.isCharacterDevice(), 'a character device'],
  [(s) => s.isBlockDevice(), 'a block device'], [(s) => s.isSocket(), 'a socket'],
];

/**
 * Reads the --config paths in order: each file, or each directory's *.conf
 * files (hidden ones and subdirectories are skipped). Throws a ConfigError
 * naming the path for anything unreadable, not a regular file, or too big.
 */
export async function readConfigSources(paths: readonly string[]): Promise<ConfigSource[]> {
  const budget: Budget = { bytes: MAX_CONFIG_BYTES, files: MAX_CONFIG_FILES };
  const sources: ConfigSource[] = [];
  for (const path of paths) {
    const handle = await openConfig(path);
    try {
      if (!(await handle.stat()).isDirectory()) {
        sources.push({ file: path, text: await readBounded(handle, path, budget) });
        continue;
      }
    } finally {
      await handle.close();
    }
    const names = await confNames(path);
    if (names.length === 0) sources.push({ emptyDirectory: path });
    for (const name of names) {
      const file = join(path, name);
      const h = await openConfig(file);
      try {
        // A *.conf that is a directory (or a link to one) is not a file: skipped, as dsrctl's find -type f does.
        if (!(await h.stat()).isDirectory()) sources.push({ file, text: await readBounded(h, file, budget) });
      } finally {
        await h.close();
      }
    }
  }
  return sources;
}

interface Budget {
  bytes: number;
  files: number;
}

/** Opens without blocking (a FIFO would wait for a writer) and without making a terminal ours. */
async function openConfig(path: string): Promise<FileHandle> {
  try {
    return await open(path, constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOCTTY);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new ConfigError(path, 0, `cannot read the file (${code ?? String(err)})`);
  }
}

/** The directory's *.conf names, not hidden, in byte order (Buffer.compare: UTF-8 bytes, not UTF-16 units). */
async function confNames(dir: string): Promise<string[]> {
  const names: string[] = [];
  try {
    for await (const entry of await opendir(dir)) {
      if (!entry.name.endsWith('.conf') || entry.name.startsWith('.') || entry.isDirectory()) continue;
      // Bounded while listing: a directory of a million files must not become a million names in memory.
      if (names.length === MAX_CONFIG_FILES) throw new ConfigError(dir, 0, `more than ${MAX_CONFIG_FILES} *.conf files in the directory`);
      names.push(entry.name);
    }
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(dir, 0, `cannot list the directory (${(err as NodeJS.ErrnoException).code ?? String(err)})`);
  }
  return names.sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
}

const CHUNK = 64 * 1024;

/** Reads a regular file to its end, but never more than the budget allows (plus one byte, to know). */
async function readBounded(handle: FileHandle, file: string, budget: Budget): Promise<string> {
  const stats = await handle.stat();
  if (!stats.isFile()) {
    const kind = KIND_OF.find(([is]) => is(stats))?.[1] ?? 'not a file';
    throw new ConfigError(file, 0, `not a regular file (${kind}): a configuration is a file, or a directory of *.conf files`);
  }
  if (--budget.files < 0) throw new ConfigError(file, 0, `more than ${MAX_CONFIG_FILES} configuration files to read`);
  const limit = Math.min(MAX_CONFIG_FILE_BYTES, budget.bytes);
  const chunks: Buffer[] = [];
  let length = 0;
  for (;;) {
    const chunk = Buffer.alloc(Math.min(CHUNK, limit + 1 - length));
    const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
    if (bytesRead === 0) break;
    chunks.push(chunk.subarray(0, bytesRead));
    length += bytesRead;
    if (length > limit) {
      throw new ConfigError(file, 0, limit === MAX_CONFIG_FILE_BYTES
        ? `larger than ${MAX_CONFIG_FILE_BYTES / MIB} MiB: not a configuration file`
        : `the configuration files together are larger than ${MAX_CONFIG_BYTES / MIB} MiB`);
    }
  }
  budget.bytes -= length;
  return Buffer.concat(chunks, length).toString('utf8');
}
