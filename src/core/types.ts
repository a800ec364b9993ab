// The vocabulary of the rewriter, shared by the core loader, the CLI, the
// daemon and the pcap mode.

export type Family = 4 | 6;
export type Verdict = 'passed' | 'rewritten' | 'malformed' | 'dropped';

/** A validated rule: family + DSCP (+ destination prefix) => new destination (+ DSCP). */
export interface Rule {
  family: Family;
  /** DSCP the packet must carry, 0-63. */
  dscp: number;
  /** Optional destination prefix the packet must also match (the RIP side). */
  match?: { address: string; length: number };
  /** The new destination address (the VIP), canonical text. */
  destination: string;
  /** Optional new DSCP, 0-63. */
  setDscp?: number;
  /** Where the rule came from, for errors and labels: `--rule 1=203.0.113.10`, `dsr.conf:4`. */
  origin: string;
}

/** The outcome for one packet. */
export interface PacketResult {
  verdict: Verdict;
  /** Why, for `malformed` and `dropped` (e.g. `tcp-truncated`). */
  reason?: string;
  /** Index into the rule set of the rule that matched (rewritten and dropped). */
  rule?: number;
}

export interface RuleCounters {
  rule: Rule;
  packets: bigint;
  bytes: bigint;
}

/** The core's packets by verdict and by reason. */
export interface Tallies {
  verdicts: Record<Verdict, bigint>;
  /** Per reason name (`tcp-truncated`, `ipv6-extension-chain`...), only non-`none`. */
  reasons: Record<string, bigint>;
}

export interface Counters extends Tallies {
  rules: RuleCounters[];
}
