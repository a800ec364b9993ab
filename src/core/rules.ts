// Rules as people write them, checked strictly before anything is loaded:
// the CLI form `DSCP=ADDRESS` and the object form from config files.

import { L3dsrError } from '../errors.js';
import { MAX_RULES } from './abi.generated.js';
import { parseAddress, parsePrefix } from './address.js';
import type { Rule } from './types.js';

/** A rule before validation (what a config file or an API caller gives). */
export interface RuleInput {
  dscp: unknown;
  destination: unknown;
  /** Destination prefix to match, e.g. `198.51.100.0/24`. */
  match?: unknown;
  setDscp?: unknown;
  /** Where it came from, used in errors: `--rule 1=203.0.113.10`, `/etc/l3dsr.conf:12`. */
  origin?: string;
}

/** A rule that cannot be loaded: where it came from and which field (code ERR_L3DSR_RULE). */
export class RuleError extends L3dsrError {
  override name = 'RuleError';
  constructor(readonly origin: string, readonly field: string, readonly detail: string) {
    super('ERR_L3DSR_RULE', `rule ${origin}: ${field}: ${detail}`);
  }
}

/**
 * A DSCP as dsr.conf(5) writes it: decimal (33), octal with a leading 0
 * (041) or hex (0x21, 0X21), 0-63. One grammar for every place a DSCP is
 * written (config lines, [rule] keys, --rule), so the same text never means
 * two values.
 */
const DSCP_TEXT = /^(?:0|[1-9]\d*|0[0-7]+|0[xX][0-9a-fA-F]+)$/;
const DSCP_BASES = 'decimal 33, octal 041 or hex 0x21';

/** The DSCP a text (or number) stands for, or a sentence saying why it is not one. */
export function dscpValue(value: unknown): number | string {
  let n = value;
  if (typeof value === 'string') {
    const t = value.trim();
    if (!DSCP_TEXT.test(t)) return `expected an integer 0-63, got ${JSON.stringify(value)} (${DSCP_BASES})`;
    n = t.length > 1 && t[0] === '0' && !/^0[xX]/.test(t) ? Number.parseInt(t, 8) : Number(t);
  }
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 63) {
    const shown = typeof value === 'string' && String(n) !== value.trim() ? `${JSON.stringify(value)} (= ${n})` : JSON.stringify(value);
    return `expected an integer 0-63, got ${shown}`;
  }
  return n;
}

function parseDscp(value: unknown, origin: string, field: string): number {
  const n = dscpValue(value);
  if (typeof n === 'string') throw new RuleError(origin, field, n);
  return n;
}

/** Validates one rule. */
export function validateRule(input: RuleInput, origin = input.origin ?? '(unnamed)'): Rule {
  const dscp = parseDscp(input.dscp, origin, 'dscp');
  if (typeof input.destination !== 'string') {
    throw new RuleError(origin, 'destination', `expected an address, got ${JSON.stringify(input.destination)}`);
  }
  const dest = parseAddress(input.destination.trim());
  if (typeof dest === 'string') throw new RuleError(origin, 'destination', `"${input.destination}": ${dest}`);
  const rule: Rule = { family: dest.family, dscp, destination: dest.text, origin };
  if (input.match !== undefined) {
    if (typeof input.match !== 'string') {
      throw new RuleError(origin, 'match', `expected a prefix such as 198.51.100.0/24, got ${JSON.stringify(input.match)}`);
    }
    const prefix = parsePrefix(input.match.trim());
    if (typeof prefix === 'string') throw new RuleError(origin, 'match', `"${input.match}": ${prefix}`);
    if (prefix.family !== dest.family) {
      throw new RuleError(origin, 'match', `"${input.match}" is IPv${prefix.family} but the destination ${dest.text} is IPv${dest.family}`);
    }
    rule.match = { address: prefix.text, length: prefix.length };
  }
  if (input.setDscp !== undefined) rule.setDscp = parseDscp(input.setDscp, origin, 'set-dscp');
  return rule;
}

/** Parses the CLI form `DSCP=ADDRESS`, e.g. `1=203.0.113.10` or `1=2001:db8:203::10`. */
export function parseRuleSpec(spec: string, origin = `--rule ${spec}`): Rule {
  const eq = spec.indexOf('=');
  if (eq < 0) throw new RuleError(origin, 'rule', `expected DSCP=ADDRESS such as 1=203.0.113.10, got "${spec}"`);
  return validateRule({ dscp: spec.slice(0, eq), destination: spec.slice(eq + 1), origin }, origin);
}

/** What identifies a rule's match: two rules with the same key are a conflict. */
export function matchKey(rule: Rule): string {
  return `${rule.family}/${rule.dscp}/${rule.match ? `${rule.match.address}/${rule.match.length}` : '*'}`;
}

/** A rule with this identity does the same as another: a repeat, and across a reload it keeps its counters. */
export function ruleIdentity(rule: Rule): string {
  return `${matchKey(rule)}>${rule.destination}/${rule.setDscp ?? -1}`;
}

export interface RuleSet {
  rules: Rule[];
  /** Things worth telling the operator that do not stop loading (DSCP 0, a repeated rule). */
  warnings: string[];
}

/** A rule that cannot be loaded beside an earlier one: the same family and DSCP (and match) for something else. */
export interface RuleConflict {
  rule: Rule;
  earlier: Rule;
  /** Says what clashes and names the earlier rule's VIP and origin. */
  detail: string;
}

/**
 * Puts validated rules together the way dsrctl does: a repeat of an earlier
 * rule (same match, same VIP) is loaded once, with a warning naming both
 * places; another VIP on a family and DSCP already taken is a conflict.
 * Returns every conflict, so a checker can list them all.
 */
export function combineRules(candidates: readonly Rule[]): RuleSet & { conflicts: RuleConflict[] } {
  const rules: Rule[] = [];
  const warnings: string[] = [];
  const conflicts: RuleConflict[] = [];
  const seen = new Map<string, Rule>();
  for (const rule of candidates) {
    const earlier = seen.get(matchKey(rule));
    if (earlier && ruleIdentity(earlier) === ruleIdentity(rule)) {
      warnings.push(`rule ${rule.origin}: repeats rule ${earlier.origin} (${ruleText(rule)}); loaded once`);
      continue;
    }
    if (earlier) {
      const match = rule.match ? ` and ${rule.match.address}/${rule.match.length}` : '';
      conflicts.push({ rule, earlier, detail: `DSCP ${rule.dscp} is already used for IPv${rule.family}${match} by rule ${earlier.origin} (VIP ${earlier.destination})` });
      continue;
    }
    seen.set(matchKey(rule), rule);
    if (rule.dscp === 0) {
      warnings.push(`rule ${rule.origin}: DSCP 0 is the default class; this rule catches unmarked traffic`);
    }
    rules.push(rule);
  }
  return { rules, warnings, conflicts };
}

/** A validated Rule is also acceptable input: its match goes back to text. */
function asInput(input: RuleInput | Rule): RuleInput {
  const m = input.match as { address?: unknown; length?: unknown } | undefined;
  if (m && typeof m === 'object' && 'address' in m) return { ...input, match: `${m.address}/${m.length}` };
  return input as RuleInput;
}

/** The core holds at most MAX_RULES rules; says so, or undefined when the set fits. */
export function tooManyRules(count: number): string | undefined {
  return count > MAX_RULES ? `at most ${MAX_RULES} rules, got ${count}` : undefined;
}

/** Validates a whole rule set; throws RuleError on the first problem. */
export function validateRules(inputs: readonly (RuleInput | Rule | string)[]): RuleSet {
  const tooMany = tooManyRules(inputs.length);
  if (tooMany) throw new RuleError('(rule set)', 'rules', tooMany);
  const set = combineRules(inputs.map((input, i) => (typeof input === 'string'
    ? parseRuleSpec(input)
    : validateRule(asInput(input), input.origin ?? `#${i + 1}`))));
  const [first] = set.conflicts;
  if (first) throw new RuleError(first.rule.origin, 'dscp', first.detail);
  return { rules: set.rules, warnings: set.warnings };
}

/** The rule as the CLI form, plus its extras: `1=203.0.113.10`, `1=203.0.113.10 match 198.51.100.0/24`. */
export function ruleText(rule: Rule): string {
  let s = `${rule.dscp}=${rule.destination}`;
  if (rule.match) s += ` match ${rule.match.address}/${rule.match.length}`;
  if (rule.setDscp !== undefined) s += ` set-dscp ${rule.setDscp}`;
  return s;
}
