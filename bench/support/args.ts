// A bench script's command line: node:util parseArgs over a table of
// options that also holds each option's help, so `--help` (synopsis, what
// the script measures, every option with its default) is written from what
// the parser reads and cannot drift from it. Bad usage is an L3dsrError
// (ERR_L3DSR_USAGE); a script prints it with its synopsis and exits 2.
import { parseArgs } from 'node:util';
import { EXIT, isL3dsrError, L3dsrError } from '../../src/errors.js';

export interface BenchOption {
  type: 'string' | 'boolean';
  default?: string | boolean;
  short?: string;
  /** The value's placeholder in the synopsis (`--reps N`); string options only, `VALUE` when unset. */
  value?: string;
  /** What the option does, for --help (the default is appended). */
  help: string;
  /** Passed by the script to its own child processes, never by a user: not shown by --help. */
  internal?: boolean;
}

export interface BenchCommand<O extends Record<string, BenchOption>> {
  /** How a user runs it, up to the options: `npm run bench:pcap --`. */
  command: string;
  /** What it measures and what it needs, for --help. */
  about: string;
  options: O;
}

/** The parsed values, typed as parseArgs types them (an option with a default is always set). */
export type BenchValues<O extends Record<string, BenchOption>> = ReturnType<typeof parseArgs<{ options: O; strict: true; allowPositionals: false }>>['values'];

const HELP: BenchOption = { type: 'boolean', short: 'h', help: 'this text' };

const flag = (name: string, o: BenchOption): string => (o.type === 'string' ? `--${name} ${o.value ?? 'VALUE'}` : `--${name}`);

/** The options a user gives, --help last. */
const shown = (options: Record<string, BenchOption>): [string, BenchOption][] =>
  [...Object.entries(options).filter(([, o]) => !o.internal), ['help', HELP]];

/** `usage: COMMAND [--a N] [--b]…`, wrapped under its first option. */
export function benchSynopsis(cmd: BenchCommand<Record<string, BenchOption>>): string {
  const head = `usage: ${cmd.command}`;
  const lines = [head];
  for (const [name, o] of shown(cmd.options)) {
    const item = ` [${flag(name, o)}]`;
    if (lines.at(-1)!.length + item.length > 100 && lines.at(-1)!.trim() !== '') lines.push(' '.repeat(head.length));
    lines[lines.length - 1] += item;
  }
  return lines.join('\n');
}

/** What --help prints: the synopsis, what the script does, and one entry per option with its default. */
export function benchHelp(cmd: BenchCommand<Record<string, BenchOption>>): string {
  const entries = shown(cmd.options).map(([name, o]) => {
    const left = `${o.short ? `  -${o.short}, ` : '      '}${flag(name, o)}`;
    const dflt = o.default === undefined || o.default === false ? '' : ` (default ${o.default})`;
    return [left, `${o.help}${dflt}`] as const;
  });
  const width = Math.max(...entries.map(([left]) => left.length)) + 2;
  const list = entries.map(([left, text]) => `${left.padEnd(width)}${text.split('\n').join(`\n${' '.repeat(width)}`)}`);
  return `${benchSynopsis(cmd)}\n\n${cmd.about.trim()}\n\n${list.join('\n')}\n`;
}

/** Parses `args`: `{ help }` when -h/--help is among them, else `{ values }`; a bad option throws an L3dsrError (ERR_L3DSR_USAGE). */
export function parseBenchArgs<const O extends Record<string, BenchOption>>(cmd: BenchCommand<O>, args: readonly string[]): { help: string } | { values: BenchValues<O> } {
  const entries: [string, BenchOption][] = [...Object.entries(cmd.options), ['help', HELP]];
  const options = Object.fromEntries(entries.map(([name, o]) => [
    name, { type: o.type, ...(o.short === undefined ? {} : { short: o.short }), ...(o.default === undefined ? {} : { default: o.default }) },
  ]));
  let values: Record<string, unknown>;
  try {
    ({ values } = parseArgs({ args: [...args], options, strict: true, allowPositionals: false }));
  } catch (err) {
    // node:util's own errors (unknown option, missing value, stray argument), all ERR_PARSE_ARGS_*.
    const code = (err as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) throw new L3dsrError('ERR_L3DSR_USAGE', (err as Error).message, { cause: err });
    throw err;
  }
  if (values.help === true) return { help: benchHelp(cmd) };
  delete values.help;
  return { values: values as BenchValues<O> };
}

/**
 * The script's command line (process.argv): prints --help and exits 0, or
 * returns `settings(values)`; a usage error from either is printed with the
 * synopsis, exit 2, before the script has done anything.
 */
export function benchArgs<const O extends Record<string, BenchOption>, R = BenchValues<O>>(
  cmd: BenchCommand<O>, settings: (values: BenchValues<O>) => R = (v) => v as R, args: readonly string[] = process.argv.slice(2),
): R {
  try {
    const parsed = parseBenchArgs(cmd, args);
    if ('help' in parsed) {
      process.stdout.write(parsed.help);
      process.exit(EXIT.ok);
    }
    return settings(parsed.values);
  } catch (err) {
    if (!isL3dsrError(err, 'ERR_L3DSR_USAGE')) throw err;
    process.stderr.write(`${err.message}\n${benchSynopsis(cmd)}\n`);
    process.exit(EXIT.usage);
  }
}

/** `text` as a positive integer (a count: --reps, --packets), or a usage error naming the option. */
export function positiveInt(name: string, text: string): number;
export function positiveInt(name: string, text: string | undefined): number | undefined;
export function positiveInt(name: string, text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d+$/.test(text) || Number(text) < 1) throw new L3dsrError('ERR_L3DSR_USAGE', `--${name}: expected a positive integer, got "${text}"`);
  return Number(text);
}

/** `text` as a positive number (a duration: --seconds), or a usage error naming the option. */
export function positiveNumber(name: string, text: string): number {
  const n = Number(text);
  if (text.trim() === '' || !Number.isFinite(n) || n <= 0) throw new L3dsrError('ERR_L3DSR_USAGE', `--${name}: expected a positive number, got "${text}"`);
  return n;
}
