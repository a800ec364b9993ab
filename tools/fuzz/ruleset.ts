// The fixed rule set every campaign runs against. It exercises each shape
// the rule table has: a plain DSCP rule per family (DSCP 1 and 17), a prefix
// rule that shadows a plain one for part of the address space (DSCP 17),
// a DSCP whose only rules have prefixes, so packets outside them pass (DSCP 9),
// and rules that also set the DSCP (the load-balancer side, DSCP 5 and 63).

import type { RuleInput } from '../../src/core/rules.js';

export const FUZZ_RULES: readonly RuleInput[] = [
  { dscp: 1, destination: '203.0.113.10', origin: 'fuzz:v4-dscp1' },
  { dscp: 17, destination: '203.0.113.17', origin: 'fuzz:v4-dscp17' },
  { dscp: 17, match: '198.51.100.0/24', destination: '203.0.113.117', origin: 'fuzz:v4-dscp17-prefix' },
  { dscp: 9, match: '198.51.100.128/25', destination: '203.0.113.9', origin: 'fuzz:v4-dscp9-prefix-only' },
  { dscp: 5, destination: '203.0.113.5', setDscp: 1, origin: 'fuzz:v4-dscp5-set1' },
  { dscp: 63, destination: '203.0.113.63', setDscp: 0, origin: 'fuzz:v4-dscp63-set0' },
  { dscp: 1, destination: '2001:db8:203::10', origin: 'fuzz:v6-dscp1' },
  // Prefix rule before the plain one here (after it for IPv4): the core keeps
  // each DSCP's chain longest-prefix first whatever the order they come in.
  { dscp: 17, match: '2001:db8:100::/48', destination: '2001:db8:203::117', origin: 'fuzz:v6-dscp17-prefix' },
  { dscp: 17, destination: '2001:db8:203::17', origin: 'fuzz:v6-dscp17' },
  { dscp: 9, match: '2001:db8:100:80::/57', destination: '2001:db8:203::9', origin: 'fuzz:v6-dscp9-prefix-only' },
  // Longer than 64 bits, so the lookup must compare the address's second half too.
  { dscp: 9, match: '2001:db8:100:80::ff00/120', destination: '2001:db8:203::99', origin: 'fuzz:v6-dscp9-prefix-120' },
  { dscp: 5, destination: '2001:db8:203::5', setDscp: 46, origin: 'fuzz:v6-dscp5-set46' },
  { dscp: 63, destination: '2001:db8:203::63', setDscp: 0, origin: 'fuzz:v6-dscp63-set0' },
];
