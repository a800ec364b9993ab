// `l3dsr rewrite`: the offline mode. Reads a capture (pcap or pcapng),
// rewrites every marked IP packet as the real server would (or, with
// --lb-config, balances every packet to a VIP as l3dsr lb would), and writes
// a classic pcap with everything but the dropped packets, in input order.
//
//   l3dsr rewrite --rule 1=203.0.113.10 --rule 1=2001:db8:203::10 \
//                 [--config FILE] [--verdicts VERDICTS.jsonl] IN.pcap OUT.pcap
//   l3dsr rewrite --lb-config FILE [--verdicts VERDICTS.jsonl] IN.pcap OUT.pcap
//
// Exit status: 0 done; 1 the run failed — the input is damaged or
// unsupported, or a write failed (the records before the fault are written
// and flushed first); 2 bad usage (unknown option, bad rule, missing input,
// output directory missing or not writable, an output that is the input or
// the other output under any name).
import { access, constants, readlink, realpath, stat } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { createBalancer, type Balancer } from '../core/balancer.js';
import { createRewriter, type Rewriter } from '../core/rewriter.js';
import { EXIT, errnoOf, exitStatusOf, isL3dsrError, L3dsrError } from '../errors.js';
import { loadConfiguration, loadLbConfiguration } from '../config/load.js';
import type { LbVip } from '../lb/types.js';
import { RuleError } from '../core/rules.js';
import type { Rule } from '../core/types.js';
import { PcapError } from '../pcap/errors.js';
import { flagsProblem } from './flags.js';
import { CAPTURE_BATCH, CAPTURE_SLOT_SIZE, rewriteCapture, type RewriteCaptureResult, type RewriteProgress } from '../pcap/rewrite-capture.js';

export const REWRITE_USAGE = `usage: l3dsr rewrite --rule DSCP=ADDRESS [--rule ...] [--config FILE] [--verdicts FILE] IN.pcap OUT.pcap
       l3dsr rewrite --lb-config FILE [--verdicts FILE] IN.pcap OUT.pcap

Rewrites the destination of every IP packet marked with a rule's DSCP to the
rule's address (the VIP), fixing checksums, as the real server of an L3DSR
setup does; with --lb-config, balances every packet to a VIP to a backend
(destination and DSCP set) as the load balancer, l3dsr lb, does. IN may be
pcap or pcapng; OUT is a classic pcap with the input's link type and
timestamp precision. Dropped packets are left out.

  -r, --rule DSCP=ADDRESS   e.g. 1=203.0.113.10 or 1=2001:db8:203::10 (repeatable)
  -c, --config FILE         rules from a configuration file (VIP = DSCP lines, [vips],
                            [rule NAME] sections); its [daemon] settings are checked
                            as l3dsr run checks them, but not used
      --lb-config FILE      balance instead: the [lb NAME] sections of a load balancer's
                            configuration, every backend taken as up, one connection
                            table ([daemon] connections entries) for the whole capture;
                            not with --rule or --config
      --verdicts FILE       one JSON line per input record: {index, verdict, reason?, rule?, l3?}
                            (reason: malformed and dropped; rule: when one matched;
                            "l3": false: not an IP frame); with --lb-config the lines
                            name vip?, backend?, flow? and connection? instead of rule
  -q, --quiet               no summary
  -h, --help                this text
`;

/** The flags of `l3dsr rewrite`, as node:util parseArgs takes them (the dispatcher reads them to find --help). */
export const REWRITE_OPTIONS = {
  rule: { type: 'string', short: 'r', multiple: true },
  config: { type: 'string', short: 'c' },
  'lb-config': { type: 'string' },
  verdicts: { type: 'string' },
  quiet: { type: 'boolean', short: 'q' },
  help: { type: 'boolean', short: 'h' },
} as const;

/** Where the command talks; tests pass their own. */
export interface RewriteIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean };
}

interface Invocation {
  /** The real server's rules, or the balancer's sections and connection-table size. */
  rules: Rule[];
  lb?: { vips: LbVip[]; connections?: number; warnings: string[] };
  input: string;
  output: string;
  verdicts?: string;
  quiet: boolean;
}

export async function rewriteCommand(argv: string[], io: RewriteIo = process): Promise<number> {
  let invocation: Invocation | 'help';
  try {
    invocation = await parseInvocation(argv);
  } catch (err) {
    if (isL3dsrError(err, 'ERR_L3DSR_USAGE', 'ERR_L3DSR_CONFIG', 'ERR_L3DSR_RULE') || isParseArgsError(err)) {
      io.stderr.write(`l3dsr rewrite: ${(err as Error).message}\nTry 'l3dsr rewrite --help'.\n`);
      return EXIT.usage;
    }
    throw err;
  }
  if (invocation === 'help') {
    io.stdout.write(REWRITE_USAGE);
    return EXIT.ok;
  }

  let rewriter: Rewriter | Balancer;
  try {
    if (invocation.lb) {
      // A fixed bucket seed: the same capture gives the same verdict lines on every run.
      rewriter = await createBalancer({
        vips: invocation.lb.vips, connections: invocation.lb.connections, tableSeed: 0, slotSize: CAPTURE_SLOT_SIZE, slotCount: CAPTURE_BATCH,
      });
    } else rewriter = await createRewriter({ rules: invocation.rules, slotSize: CAPTURE_SLOT_SIZE, slotCount: CAPTURE_BATCH });
  } catch (err) {
    if (err instanceof RuleError) {
      io.stderr.write(`l3dsr rewrite: ${err.message}\n`);
      return exitStatusOf(err);
    }
    throw err;
  }
  for (const warning of invocation.lb ? invocation.lb.warnings : (rewriter as Rewriter).warnings) io.stderr.write(`l3dsr rewrite: warning: ${warning}\n`);

  const progress = io.stderr.isTTY === true ? new ProgressLine(io.stderr) : undefined;
  let result: RewriteCaptureResult;
  try {
    result = await rewriteCapture({
      input: invocation.input,
      output: invocation.output,
      verdicts: invocation.verdicts,
      rewriter,
      onProgress: progress && ((p) => progress.update(p)),
    });
  } catch (err) {
    progress?.clear();
    if (err instanceof PcapError) {
      // Damage found while opening (bad magic, truncated header): nothing was written.
      io.stderr.write(`l3dsr rewrite: ${err.message}\n`);
      return exitStatusOf(err);
    }
    if (errnoOf(err) !== undefined) {
      // A system call failed half-way (ENOSPC, EIO…): what was buffered has been flushed.
      io.stderr.write(`l3dsr rewrite: ${(err as Error).message}\n`);
      return EXIT.failure;
    }
    throw err;
  }
  progress?.clear();
  if (!invocation.quiet || result.error) io.stderr.write(summary(invocation, result));
  if (result.error) {
    io.stderr.write(
      `l3dsr rewrite: ${result.error.message}\n` +
        `l3dsr rewrite: stopped there; the ${result.written} records before it are in ${invocation.output}\n`,
    );
    return EXIT.failure;
  }
  return EXIT.ok;
}

async function parseInvocation(argv: string[]): Promise<Invocation | 'help'> {
  const { values, positionals, tokens } = parseArgs({ args: argv, strict: true, allowPositionals: true, options: REWRITE_OPTIONS, tokens: true });
  if (values.help) return 'help';
  const flagProblem = flagsProblem(tokens, REWRITE_OPTIONS);
  if (flagProblem) throw new L3dsrError('ERR_L3DSR_USAGE', flagProblem);
  if (positionals.length !== 2) {
    throw new L3dsrError('ERR_L3DSR_USAGE', `expected two files, IN.pcap and OUT.pcap, got ${positionals.length}${positionals.length > 0 ? ` (${positionals.join(' ')})` : ''}`);
  }
  const [input, output] = positionals;
  let rules: Rule[] = [];
  let lb: Invocation['lb'];
  if (values['lb-config'] !== undefined) {
    if (values.rule !== undefined || values.config !== undefined) {
      throw new L3dsrError('ERR_L3DSR_USAGE', `--lb-config balances as l3dsr lb does; --${values.rule !== undefined ? 'rule' : 'config'} rewrites as the real server does: give one or the other`);
    }
    // Through the loader of l3dsr lb: the same checks, the same errors (file, line, field).
    const config = await loadLbConfiguration({ configs: [values['lb-config']] });
    lb = { vips: config.vips, connections: config.daemon.connections, warnings: config.warnings };
  } else {
    // A config's [daemon] settings and L2DSR lines mean nothing offline; its rules join the --rule ones
    // through the loader of `l3dsr run`, so a DSCP given in both places is an error there too.
    ({ rules } = await loadConfiguration({ configs: values.config === undefined ? [] : [values.config], rules: values.rule ?? [] }));
    if (rules.length === 0) throw new L3dsrError('ERR_L3DSR_USAGE', 'no rules: give at least one --rule DSCP=ADDRESS (e.g. --rule 1=203.0.113.10), a --config file with rules, or an --lb-config file');
  }

  try {
    await access(input, constants.R_OK);
  } catch (err) {
    throw new L3dsrError('ERR_L3DSR_USAGE', `cannot read input ${input}: ${describeFsError(err)}`);
  }
  if ((await stat(input)).isDirectory()) throw new L3dsrError('ERR_L3DSR_USAGE', `input ${input} is a directory`);
  for (const [what, path] of [['output', output], ['--verdicts', values.verdicts]] as const) {
    if (path === undefined) continue;
    try {
      await access(dirname(resolve(path)), constants.W_OK);
    } catch (err) {
      throw new L3dsrError('ERR_L3DSR_USAGE', `cannot write ${what} ${path}: directory ${dirname(resolve(path))}: ${describeFsError(err)}`);
    }
  }
  // Opening an output truncates it: it must not reach the input, or the other output, by any name.
  const inputFile = await fileIdentity(input);
  const outputFile = await fileIdentity(output);
  if (outputFile.key === inputFile.key) throw new L3dsrError('ERR_L3DSR_USAGE', `output ${output} is the input file ${input} (${outputFile.how}): refusing to write over what is being read`);
  if (values.verdicts !== undefined) {
    const verdictsFile = await fileIdentity(values.verdicts);
    if (verdictsFile.key === inputFile.key) throw new L3dsrError('ERR_L3DSR_USAGE', `--verdicts ${values.verdicts} is the input file ${input} (${verdictsFile.how}): refusing to write over what is being read`);
    if (verdictsFile.key === outputFile.key) throw new L3dsrError('ERR_L3DSR_USAGE', `--verdicts ${values.verdicts} is the output file ${output} (${verdictsFile.how}): give them different files`);
  }
  return { rules, lb, input, output, verdicts: values.verdicts, quiet: values.quiet === true };
}

/** Symbolic links followed before a path is taken as a file to create (Linux's own limit). */
const MAX_SYMLINK_HOPS = 40;

/**
 * The file a path reaches: an existing file by device and inode (whatever
 * hard or symbolic link names it), a file still to be created by the real
 * path it will be created at (through a dangling link, a linked directory).
 */
async function fileIdentity(path: string): Promise<{ key: string; how: string }> {
  try {
    const st = await stat(path, { bigint: true });
    return { key: `inode ${st.dev}:${st.ino}`, how: 'same device and inode' };
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw new L3dsrError('ERR_L3DSR_USAGE', `cannot inspect ${path}: ${describeFsError(err)}`);
  }
  let at = resolve(path);
  for (let hops = 0; hops < MAX_SYMLINK_HOPS; hops++) {
    const target = await readlink(at).catch(() => undefined);
    if (target === undefined) break;
    at = resolve(dirname(at), target);
  }
  const dir = await realpath(dirname(at)).catch(() => dirname(at));
  return { key: `path ${join(dir, basename(at))}`, how: 'the same path once links are followed' };
}

function isParseArgsError(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_');
}

function describeFsError(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  if (e.code === 'ENOENT') return 'no such file or directory';
  if (e.code === 'EACCES') return 'permission denied';
  return e.message;
}

/** The end-of-run report on stderr: packets per verdict, per rule, per reason. */
export function summary(invocation: Pick<Invocation, 'input' | 'output'>, r: RewriteCaptureResult): string {
  const lines = [`l3dsr rewrite: ${r.records} records from ${invocation.input}, ${r.written} written to ${invocation.output}`];
  const width = String(r.records).length;
  const count = (n: number): string => String(n).padStart(width);
  lines.push(`  rewritten  ${count(r.verdicts.rewritten)}`);
  lines.push(`  passed     ${count(r.verdicts.passed)}${r.notIp > 0 ? ` (${r.notIp} not IP)` : ''}`);
  lines.push(`  malformed  ${count(r.verdicts.malformed)}  (written unchanged)`);
  lines.push(`  dropped    ${count(r.verdicts.dropped)}  (left out)`);
  // Rules by their text (1=203.0.113.10), balancer sections as [lb NAME].
  for (const rule of r.rules) lines.push(`  ${rule.text.startsWith('[lb ') ? '' : 'rule '}${rule.text}: ${rule.packets} packets, ${rule.bytes} bytes rewritten`);
  for (const [reason, { verdict, packets }] of Object.entries(r.reasons).sort()) lines.push(`  ${verdict} ${reason}: ${packets}`);
  return `${lines.join('\n')}\n`;
}

/** A one-line progress display, redrawn at most a few times a second. */
class ProgressLine {
  private last = 0;
  private readonly started = Date.now();
  private shown = false;

  constructor(private readonly out: { write(text: string): unknown }) {}

  update(p: RewriteProgress): void {
    const now = Date.now();
    if (now - this.last < 200) return;
    this.last = now;
    const seconds = Math.max((now - this.started) / 1000, 0.001);
    const rate = `${Math.round(p.records / seconds / 1000)} kpps`;
    const done = p.size ? `${((100 * p.position) / p.size).toFixed(0).padStart(3)}% ` : '';
    this.out.write(`\r\x1b[K${done}${p.records} packets, ${rate}`);
    this.shown = true;
  }

  clear(): void {
    if (this.shown) this.out.write('\r\x1b[K');
    this.shown = false;
  }
}
