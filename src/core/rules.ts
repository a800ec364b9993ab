// Rules as people write them, checked strictly before anything is loaded:
// the CLI form `DSCP=ADDRESS` and the object form from config files.

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

export class RuleError extends Error {
  readonly code = 'ERR_L3DSR_RULE';
  constructor(readonly origin: string, readonly field: string, readonly detail: string) {
    super(`rule ${origin}: ${field}: ${detail}`);
    this.name = 'RuleError';
  }
}

function parseDscp(value: unknown, origin: string, field: string): number {
  const n = typeof value === 'string' && /^\d+$/.test(value.trim()) ? Number(value.trim()) : value;
  if (typeof n !== 'number' || !Number.isInteger(n) || n < 0 || n > 63) {
    throw new RuleError(origin, field, `expected an integer 0-63, got ${JSON.stringify(value)}`);
  }
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

export interface RuleSet {
  rules: Rule[];
  /** Things worth telling the operator that do not stop loading (DSCP 0). */
  warnings: string[];
}

/** A validated Rule is also acceptable input: its match goes back to text. */
function asInput(input: RuleInput | Rule): RuleInput {
  const m = input.match as { address?: unknown; length?: unknown } | undefined;
  if (m && typeof m === 'object' && 'address' in m) return { ...input, match: `${m.address}/${m.length}` };
  return input as RuleInput;
}

/** Validates a whole rule set; throws RuleError on the first problem. */
export function validateRules(inputs: readonly (RuleInput | Rule | string)[]): RuleSet {
  if (inputs.length > MAX_RULES) {
    throw new RuleError('(rule set)', 'rules', `at most ${MAX_RULES} rules, got ${inputs.length}`);
  }
  const rules: Rule[] = [];
  const warnings: string[] = [];
  const seen = new Map<string, Rule>();
  inputs.forEach((input, i) => {
    const rule = typeof input === 'string'
      ? parseRuleSpec(input)
      : validateRule(asInput(input), input.origin ?? `#${i + 1}`);
    const key = matchKey(rule);
    const earlier = seen.get(key);
    if (earlier) {
      throw new RuleError(rule.origin, 'dscp',
        `DSCP ${rule.dscp} is already used for IPv${rule.family}${rule.match ? ` and ${rule.match.address}/${rule.match.length}` : ''} by rule ${earlier.origin}`);
    }
    seen.set(key, rule);
    if (rule.dscp === 0) {
      warnings.push(`rule ${rule.origin}: DSCP 0 is the default class; this rule catches unmarked traffic`);
    }
    rules.push(rule);
  });
  return { rules, warnings };
}

/** The rule as the CLI form, plus its extras: `1=203.0.113.10`, `1=203.0.113.10 match 198.51.100.0/24`. */
export function ruleText(rule: Rule): string {
  let s = `${rule.dscp}=${rule.destination}`;
  if (rule.match) s += ` match ${rule.match.address}/${rule.match.length}`;
  if (rule.setDscp !== undefined) s += ` set-dscp ${rule.setDscp}`;
  return s;
}
