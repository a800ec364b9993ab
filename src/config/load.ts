// The one loader: what `l3dsr run` starts with, what a SIGHUP reloads and
// what `l3dsr check` prints are all made here, from the --config paths (in
// order) and the --rule flags. Reads the files, resolves host names, checks
// every VIP and the set as a whole, and reports every problem it finds.
// A configuration is for the real server (VIP = DSCP lines, [vips], [rule])
// or for the load balancer ([lb] sections, for l3dsr lb), never both: each
// loader refuses what belongs to the other, at its line.

import { lookup } from 'node:dns/promises';
import { isHostName, parseAddress } from '../core/address.js';
import { MAX_RULES } from '../core/abi.generated.js';
import { combineRules, parseRuleSpec, RuleError, tooManyRules, validateRule } from '../core/rules.js';
import type { Family, Rule } from '../core/types.js';
import type { LbVip } from '../lb/types.js';
import { DAEMON_KEY_COMMAND, newConfigState, parseConfig, pendingError, type ConfigState, type DaemonSettings, type PendingVip } from './config.js';
import { combineLbVips, readLbSection, type ReadLb } from './lb.js';
import { readConfigSources, type ConfigSource } from './files.js';
import { ConfigError, ConfigErrors } from './parse.js';

export interface LoadRequest {
  /** --config paths in the order given: files, or directories of *.conf files. */
  configs: readonly string[];
  /** --rule flags, DSCP=VIP (numeric addresses only). */
  rules?: readonly string[];
}

/** An L2DSR VIP: a dsr.conf line without `=DSCP`. It goes on lo and has no rewrite rule. */
export interface L2dsrVip {
  family: Family;
  /** Canonical text, after resolution. */
  address: string;
  origin: string;
}

/** What would be loaded. */
export interface Configuration {
  /** The files read, in the order read. */
  files: string[];
  /** [daemon] settings of the files (command-line flags are not applied here). */
  daemon: DaemonSettings;
  /** L3DSR rules for the core: the --rule ones first, then the files' in order. */
  rules: Rule[];
  l2dsr: L2dsrVip[];
  warnings: string[];
}

/** What `l3dsr lb` would load. */
export interface LbConfiguration {
  files: string[];
  daemon: DaemonSettings;
  /** The [lb] sections in reading order. */
  vips: LbVip[];
  warnings: string[];
}

/** A configuration of either kind, and the command it is for. */
export type AnyConfiguration = { command: 'run'; config: Configuration } | { command: 'lb'; config: LbConfiguration };

/** Host names are resolved at load; a resolver that hangs must not hold a start or a reload for ever. */
export const RESOLVE_TIMEOUT_MS = 10_000;
/** Enough to fix a file in one go; past this the rest are probably the same mistake. */
const MAX_PROBLEMS = 50;

/**
 * Loads a configuration, or throws ConfigErrors listing every problem
 * (each with its file and line, or its --rule), having changed nothing.
 */
export async function loadConfiguration(request: LoadRequest): Promise<Configuration> {
  return configurationFrom(await readSources(request.configs), request.rules ?? []);
}

/** The configuration the texts read and the --rule flags make (loadConfiguration after reading). */
export async function configurationFrom(sources: readonly ConfigSource[], ruleSpecs: readonly string[]): Promise<Configuration> {
  const problems: ConfigError[] = [];
  const warnings: string[] = [];
  /** Where each rule's DSCP was written: a conflict is reported there. */
  const dscpAt = new Map<Rule, { file: string; line: number }>();
  const candidates: Rule[] = [];
  for (const spec of ruleSpecs) {
    try {
      const rule = parseRuleSpec(spec);
      candidates.push(rule);
      dscpAt.set(rule, { file: rule.origin, line: 0 });
    } catch (err) {
      if (!(err instanceof RuleError)) throw err;
      problems.push(new ConfigError(err.origin, 0, `${err.field}: ${err.detail}`));
    }
  }

  const { state, files, emptyDirectories } = parseSources(sources);
  problems.push(...state.problems);
  for (const { section, file } of state.lb) {
    problems.push(new ConfigError(file, section.line, `[lb${section.name ? ` ${section.name}` : ''}] configures the load balancer (l3dsr lb); the real server's configuration holds VIP = DSCP lines, [vips] and [rule NAME]: one configuration serves one command`));
  }
  problems.push(...otherCommandsSettings(state, 'run', problems));

  const addresses = await resolveHostNames(state.vips);
  const l2dsr: L2dsrVip[] = [];
  const l2seen = new Map<string, L2dsrVip>();
  let tooManyL2: ConfigError | undefined;
  for (const vip of state.vips) {
    const name = vip.input.destination;
    const resolved = addresses.get(name);
    if (resolved?.error) {
      problems.push(new ConfigError(vip.file, vip.lines.destination, `${vip.section ? `${vip.section} ` : ''}destination: "${name}" ${resolved.error}`));
      continue;
    }
    const destination = resolved?.address ?? name;
    if (vip.type === 'l2dsr') {
      const address = parseAddress(destination);
      if (typeof address === 'string') {
        problems.push(new ConfigError(vip.file, vip.lines.destination, `destination: "${name}": ${address}`));
        continue;
      }
      const earlier = l2seen.get(address.text);
      if (earlier) {
        warnings.push(`${vip.input.origin}: repeats the L2DSR VIP ${address.text} of ${earlier.origin}; loaded once`);
        continue;
      }
      const entry = { family: address.family, address: address.text, origin: vip.input.origin };
      l2seen.set(address.text, entry);
      l2dsr.push(entry);
      if (l2dsr.length === MAX_RULES + 1) tooManyL2 = new ConfigError(vip.file, vip.lines.destination, `at most ${MAX_RULES} L2DSR VIPs`);
      continue;
    }
    try {
      const rule = validateRule({ ...vip.input, destination });
      candidates.push(rule);
      dscpAt.set(rule, { file: vip.file, line: vip.lines.dscp });
    } catch (err) {
      if (!(err instanceof RuleError)) throw err;
      problems.push(pendingError(vip, err));
    }
  }

  const set = combineRules(candidates);
  for (const c of set.conflicts) {
    const at = dscpAt.get(c.rule)!;
    const section = / (\[rule .*\])$/.exec(c.rule.origin)?.[1];
    problems.push(new ConfigError(at.file, at.line, `${section ? `${section} ` : ''}dscp: ${c.detail}`));
  }
  const tooMany = tooManyRules(set.rules.length);
  if (tooMany) {
    const at = dscpAt.get(set.rules[MAX_RULES])!;
    problems.push(new ConfigError(at.file, at.line, tooMany));
  }
  if (tooManyL2) problems.push(tooManyL2);
  warnings.push(...set.warnings);

  // An empty /etc/dsr.d is fine beside other rules (more may come on reload), not as the whole configuration.
  for (const dir of emptyDirectories) {
    if (set.rules.length + l2dsr.length === 0) problems.push(new ConfigError(dir, 0, 'no *.conf files in the directory'));
    else warnings.push(`${dir}: no *.conf files in the directory`);
  }

  throwIfAny(problems, files);
  return { files, daemon: state.daemon, rules: set.rules, l2dsr, warnings };
}

/** Loads a configuration for l3dsr lb, or throws ConfigErrors listing every problem. */
export async function loadLbConfiguration(request: { configs: readonly string[] }): Promise<LbConfiguration> {
  return lbConfigurationFrom(await readSources(request.configs));
}

/** The load-balancer configuration the texts read make (loadLbConfiguration after reading); --rule flags are refused. */
export function lbConfigurationFrom(sources: readonly ConfigSource[], ruleSpecs: readonly string[] = []): LbConfiguration {
  const problems: ConfigError[] = [];
  const warnings: string[] = [];
  const notHere = "is a real-server rule, for l3dsr run; the load balancer's configuration holds [daemon] and [lb NAME] sections: one configuration serves one command";
  for (const spec of ruleSpecs) problems.push(new ConfigError(`--rule ${spec}`, 0, `--rule ${notHere}`));
  const { state, files, emptyDirectories } = parseSources(sources);
  problems.push(...state.problems);
  for (const vip of state.vips) {
    const what = vip.section ?? (vip.type === 'l2dsr' ? `the L2DSR VIP ${vip.input.destination}` : `the VIP line ${vip.input.destination} = ${String(vip.input.dscp)}`);
    problems.push(new ConfigError(vip.file, vip.lines.destination, `${what} ${notHere}`));
  }
  problems.push(...otherCommandsSettings(state, 'lb', problems));
  const names = new Map<string, string>();
  const read = state.lb.map((p) => readLbSection(p, names, problems)).filter((r): r is ReadLb => r !== undefined);
  const vips = combineLbVips(read, problems, warnings);
  if (state.lb.length === 0) problems.push(new ConfigError(files[0] ?? emptyDirectories[0] ?? '(no configuration)', 0, 'no [lb NAME] section: l3dsr lb needs at least one VIP'));
  for (const dir of emptyDirectories) warnings.push(`${dir}: no *.conf files in the directory`);
  throwIfAny(problems, files);
  return { files, daemon: state.daemon, vips, warnings };
}

/** Loads a configuration of either kind: for l3dsr lb if it has an [lb] section, for l3dsr run otherwise. */
export async function loadAnyConfiguration(request: LoadRequest): Promise<AnyConfiguration> {
  const sources = await readSources(request.configs);
  if (parseSources(sources).state.lb.length > 0) return { command: 'lb', config: lbConfigurationFrom(sources, request.rules ?? []) };
  return { command: 'run', config: await configurationFrom(sources, request.rules ?? []) };
}

async function readSources(configs: readonly string[]): Promise<ConfigSource[]> {
  try {
    return await readConfigSources(configs);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    throw new ConfigErrors([err]);
  }
}

/** Every file's text read into one state, as if the files were one. */
function parseSources(sources: readonly ConfigSource[]): { state: ConfigState; files: string[]; emptyDirectories: string[] } {
  const state = newConfigState();
  const files: string[] = [];
  const emptyDirectories: string[] = [];
  for (const source of sources) {
    if ('emptyDirectory' in source) {
      emptyDirectories.push(source.emptyDirectory);
      continue;
    }
    files.push(source.file);
    parseConfig(source.text, source.file, state);
  }
  return { state, files, emptyDirectories };
}

/** [daemon] settings of the other command, each refused at its line (unless its value was refused there already). */
function otherCommandsSettings(state: ConfigState, command: 'run' | 'lb', known: readonly ConfigError[]): ConfigError[] {
  return state.daemonKeys.flatMap(({ key, file, line }) => {
    const owner = DAEMON_KEY_COMMAND.get(key);
    return owner && owner !== command && !known.some((p) => p.file === file && p.line === line)
      ? [new ConfigError(file, line, `${key}: a setting of l3dsr ${owner} only, and this configuration is for l3dsr ${command}`)]
      : [];
  });
}

/** Throws every problem, in reading order (--rule flags first, then file by file, line by line), at most MAX_PROBLEMS of them. */
function throwIfAny(problems: ConfigError[], files: readonly string[]): void {
  if (problems.length === 0) return;
  const position = (p: ConfigError) => files.indexOf(p.file);
  problems.sort((a, b) => position(a) - position(b) || a.line - b.line);
  const shown = problems.slice(0, MAX_PROBLEMS);
  if (problems.length > MAX_PROBLEMS) {
    const last = problems[MAX_PROBLEMS];
    shown.push(new ConfigError(last.file, last.line, `... and ${problems.length - MAX_PROBLEMS} more problems`));
  }
  throw new ConfigErrors(shown);
}

/**
 * Resolves every distinct host name given as a VIP to its first IPv4
 * address (family 4 only, as dsrctl does: a name never means an IPv6 VIP;
 * /etc/hosts counts), or says why it did not resolve.
 */
async function resolveHostNames(vips: readonly PendingVip[]): Promise<Map<string, { address?: string; error?: string }>> {
  const names = new Set(vips.map((v) => v.input.destination).filter((d) => typeof parseAddress(d) === 'string' && isHostName(d)));
  return new Map(await Promise.all([...names].map(async (name) => [name, await resolveIPv4(name)] as const)));
}

async function resolveIPv4(name: string): Promise<{ address?: string; error?: string }> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ error: string }>((resolve) => {
    timer = setTimeout(() => resolve({ error: `got no answer from the resolver within ${RESOLVE_TIMEOUT_MS / 1000} s` }), RESOLVE_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      lookup(name, { family: 4 }).then(
        (r) => ({ address: r.address }),
        (err: NodeJS.ErrnoException) => ({ error: `does not resolve to an IPv4 address (${err.code ?? err.message})` }),
      ),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}
