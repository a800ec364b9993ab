// `l3dsr check`: validates a configuration without touching the system (as
// `nginx -t` or `nft -c` do) and prints what `l3dsr run` would load. Both
// get their VIPs from the same loader (src/config/load.ts), so what check
// prints is what run loads. A configuration with [lb] sections is for the
// load balancer (l3dsr lb): its VIPs and backends are printed instead
// (check-lb.ts).

import { parseArgs } from 'node:util';
import { loadAnyConfiguration, type AnyConfiguration, type Configuration } from '../config/load.js';
import { ConfigError, ConfigErrors } from '../config/parse.js';
import type { Family } from '../core/types.js';
import { EXIT } from '../errors.js';
import { checkedLbVips, formatLbCheck } from './check-lb.js';
import { flagsProblem } from './flags.js';
import { table } from './table.js';

export const CHECK_USAGE = `usage: l3dsr check [--config PATH ...] [--rule DSCP=VIP ...] [--json]

Reads the configuration as l3dsr run does (config files, directories of
*.conf files, --rule flags), resolves host names, and prints the VIPs it
would load, or every problem found. A configuration with [lb NAME]
sections is for the load balancer (l3dsr lb): check prints its VIPs, each
with its backends. Changes nothing on the system.
Exit status: 0 valid, 2 not (or bad usage).

  --config PATH      a config file or a directory of *.conf files (repeatable, read in order)
  --rule DSCP=VIP    a rule as given to l3dsr run (repeatable)
  --json             {"ok": true, "command": "run", "rules": [...]},
                     {"ok": true, "command": "lb", "vips": [...]} or {"ok": false, "errors": [...]}`;

/** The flags of `l3dsr check` (the dispatcher reads them to find --help). */
export const CHECK_OPTIONS = {
  config: { type: 'string', multiple: true }, rule: { type: 'string', multiple: true }, json: { type: 'boolean' }, help: { type: 'boolean', short: 'h' },
} as const;

/** Where the command writes; tests pass their own. */
export interface CheckIo {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown };
}

/** One VIP as check prints it (the `rules` array of --json). */
export interface CheckedVip {
  type: 'l3dsr' | 'l2dsr';
  /** After resolution, canonical text. */
  vip: string;
  family: Family;
  dscp: number | null;
  match: string | null;
  setDscp: number | null;
  source: string;
}

/** What would be loaded, in the order the daemon holds it: L3DSR rules, then L2DSR VIPs. */
export function checkedVips(c: Configuration): CheckedVip[] {
  return [
    ...c.rules.map((r): CheckedVip => ({
      type: 'l3dsr', vip: r.destination, family: r.family, dscp: r.dscp,
      match: r.match ? `${r.match.address}/${r.match.length}` : null, setDscp: r.setDscp ?? null, source: r.origin,
    })),
    ...c.l2dsr.map((v): CheckedVip => ({ type: 'l2dsr', vip: v.address, family: v.family, dscp: null, match: null, setDscp: null, source: v.origin })),
  ];
}

export async function checkCommand(argv: string[], io: CheckIo = process): Promise<number> {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, strict: true, options: CHECK_OPTIONS, tokens: true });
  } catch (err) {
    io.stderr.write(`l3dsr check: ${(err as Error).message}\n${CHECK_USAGE}\n`);
    return EXIT.usage;
  }
  const flagProblem = flagsProblem(parsed.tokens, CHECK_OPTIONS);
  if (flagProblem) {
    io.stderr.write(`l3dsr check: ${flagProblem}\n${CHECK_USAGE}\n`);
    return EXIT.usage;
  }
  const v = parsed.values;
  if (v.help) {
    io.stdout.write(`${CHECK_USAGE}\n`);
    return EXIT.ok;
  }
  if (!v.config?.length && !v.rule?.length) {
    io.stderr.write(`l3dsr check: nothing to check: give --config PATH or --rule DSCP=VIP\n${CHECK_USAGE}\n`);
    return EXIT.usage;
  }
  let loaded: AnyConfiguration;
  try {
    loaded = await loadAnyConfiguration({ configs: v.config ?? [], rules: v.rule ?? [] });
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    const problems = err instanceof ConfigErrors ? err.problems : [err];
    if (v.json) io.stdout.write(`${JSON.stringify({ ok: false, errors: problems.map((p) => ({ source: p.source, message: p.detail })) })}\n`);
    else for (const p of problems) io.stderr.write(`l3dsr check: ${p.message}\n`);
    return EXIT.usage;
  }
  if (loaded.command === 'lb') {
    const { config } = loaded;
    if (v.json) {
      io.stdout.write(`${JSON.stringify({ ok: true, command: 'lb', files: config.files, daemon: config.daemon, vips: checkedLbVips(config), warnings: config.warnings })}\n`);
      return EXIT.ok;
    }
    io.stdout.write(formatLbCheck(config));
    for (const w of config.warnings) io.stderr.write(`l3dsr check: warning: ${w}\n`);
    return EXIT.ok;
  }
  const { config } = loaded;
  const warnings = [...config.warnings];
  if (config.rules.length === 0) warnings.push('no L3DSR rules: l3dsr run needs at least one to start');
  const vips = checkedVips(config);
  if (v.json) {
    io.stdout.write(`${JSON.stringify({ ok: true, command: 'run', files: config.files, daemon: config.daemon, rules: vips, warnings })}\n`);
    return EXIT.ok;
  }
  io.stdout.write(formatCheck(config, vips));
  for (const w of warnings) io.stderr.write(`l3dsr check: warning: ${w}\n`);
  return EXIT.ok;
}

/** The readable form: one row per VIP, then what was read. */
export function formatCheck(config: Configuration, vips: readonly CheckedVip[]): string {
  const extras = vips.some((x) => x.match !== null || x.setDscp !== null);
  const rows = [
    ['type', 'VIP', 'DSCP', ...(extras ? ['match', 'set-dscp'] : []), 'source'],
    ...vips.map((x) => [
      x.type, x.vip, x.dscp === null ? '--' : String(x.dscp),
      ...(extras ? [x.match ?? '--', x.setDscp === null ? '--' : String(x.setDscp)] : []), x.source,
    ]),
  ];
  const files = config.files.length === 1 ? '1 file' : `${config.files.length} files`;
  return `${[...table(rows), '', `valid: ${config.rules.length} L3DSR rules, ${config.l2dsr.length} L2DSR VIPs, from ${files}`].join('\n')}\n`;
}
