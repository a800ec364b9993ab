// Rule parsing is strict and its errors name the rule, the field and the text.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseRuleSpec, validateRules, RuleError } from '../src/core/rules.js';

describe('the CLI form DSCP=ADDRESS', () => {
  it('accepts IPv4 and IPv6, canonicalising IPv6', () => {
    assert.deepEqual(parseRuleSpec('1=203.0.113.10'), { family: 4, dscp: 1, destination: '203.0.113.10', origin: '--rule 1=203.0.113.10' });
    assert.deepEqual(parseRuleSpec('63=2001:DB8:203:0::10'), { family: 6, dscp: 63, destination: '2001:db8:203::10', origin: '--rule 63=2001:DB8:203:0::10' });
  });

  it('reads the DSCP as dsr.conf does: decimal, octal with a leading 0, hex', () => {
    assert.deepEqual(['33', '041', '0x21', '0X21', '0', '00', '077'].map((d) => parseRuleSpec(`${d}=203.0.113.10`).dscp), [33, 33, 33, 33, 0, 0, 63]);
  });

  const bad: [string, RegExp][] = [
    ['1', /expected DSCP=ADDRESS/],
    ['0x40=203.0.113.10', /dscp: expected an integer 0-63, got "0x40" \(= 64\)/],
    ['0100=203.0.113.10', /dscp: expected an integer 0-63, got "0100" \(= 64\)/],
    ['09=203.0.113.10', /dscp: expected an integer 0-63, got "09" \(decimal 33, octal 041 or hex 0x21\)/],
    ['0x=203.0.113.10', /dscp: expected an integer 0-63, got "0x"/],
    ['+1=203.0.113.10', /dscp: expected an integer 0-63, got "\+1"/],
    ['64=203.0.113.10', /dscp: expected an integer 0-63, got "64"/],
    ['-1=203.0.113.10', /dscp: expected an integer 0-63/],
    ['x=203.0.113.10', /dscp: expected an integer 0-63, got "x"/],
    ['1=203.0.113.300', /destination: "203\.0\.113\.300": expected a dotted-quad/],
    ['1=010.1.1.1', /"010\.1\.1\.1": expected a dotted-quad decimal/],
    ['1=10.1', /"10\.1": expected a dotted-quad/],
    ['1=0x0a.1.1.1', /"0x0a\.1\.1\.1": expected an IPv4 address/],
    ['1=vip.example', /"vip\.example": expected an IPv4 address/],
    ['1=fe80::1%eth0', /zone ids are not allowed/],
    ['1=2001:db8::g', /"2001:db8::g": expected an IPv4 address .* or an IPv6 address/],
    ['1=', /destination: "": expected/],
  ];
  for (const [spec, message] of bad) {
    it(`refuses ${JSON.stringify(spec)} with a message naming the rule`, () => {
      assert.throws(() => parseRuleSpec(spec), (err: unknown) => {
        assert.ok(err instanceof RuleError);
        assert.equal(err.code, 'ERR_L3DSR_RULE');
        assert.match(err.message, new RegExp(`^rule --rule ${spec.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: `));
        assert.match(err.message, message);
        return true;
      });
    });
  }
});

describe('rule sets', () => {
  it('refuses the same DSCP twice within a family, naming both rules', () => {
    assert.throws(() => validateRules(['1=203.0.113.10', '2=203.0.113.20', '1=203.0.113.30']),
      /rule --rule 1=203\.0\.113\.30: dscp: DSCP 1 is already used for IPv4 by rule --rule 1=203\.0\.113\.10/);
  });
  it('loads an exact repeat once, with a warning naming both (as dsrctl does)', () => {
    const set = validateRules(['1=203.0.113.10', '0x1=203.0.113.10']);
    assert.deepEqual(set.rules.map((r) => r.origin), ['--rule 1=203.0.113.10']);
    assert.deepEqual(set.warnings, ['rule --rule 0x1=203.0.113.10: repeats rule --rule 1=203.0.113.10 (1=203.0.113.10); loaded once']);
  });
  it('lets an IPv4 and an IPv6 VIP share a DSCP, and two prefixes share one', () => {
    const set = validateRules(['1=203.0.113.10', '1=2001:db8:203::10',
      { dscp: 1, destination: '203.0.113.11', match: '198.51.100.0/24' },
      { dscp: 1, destination: '203.0.113.12', match: '198.51.101.0/24' }]);
    assert.equal(set.rules.length, 4);
    assert.throws(() => validateRules([{ dscp: 1, destination: '203.0.113.11', match: '198.51.100.7/24', origin: 'a' },
      { dscp: 1, destination: '203.0.113.12', match: '198.51.100.0/24', origin: 'b' }]), /rule b: dscp: DSCP 1 is already used for IPv4 and 198\.51\.100\.0\/24 by rule a/);
  });
  it('refuses a prefix of the other family and bad prefix lengths', () => {
    assert.throws(() => validateRules([{ dscp: 1, destination: '203.0.113.10', match: '2001:db8::/32', origin: 'conf:3' }]),
      /rule conf:3: match: "2001:db8::\/32" is IPv6 but the destination 203\.0\.113\.10 is IPv4/);
    assert.throws(() => validateRules([{ dscp: 1, destination: '203.0.113.10', match: '198.51.100.0/33', origin: 'conf:4' }]),
      /rule conf:4: match: "198\.51\.100\.0\/33": expected a prefix length 0-32 after "\/", got "33"/);
    assert.throws(() => validateRules([{ dscp: 1, destination: '203.0.113.10', setDscp: 70, origin: 'conf:5' }]),
      /rule conf:5: set-dscp: expected an integer 0-63, got 70/);
  });
  it('warns about DSCP 0, which catches unmarked traffic', () => {
    const set = validateRules(['0=203.0.113.10']);
    assert.deepEqual(set.warnings, ['rule --rule 0=203.0.113.10: DSCP 0 is the default class; this rule catches unmarked traffic']);
  });
  it('refuses more rules than the core holds', () => {
    const many = Array.from({ length: 1025 }, (_, i) => ({ dscp: 1, destination: '2001:db8:203::10', match: `2001:db8:${i.toString(16)}::/48` }));
    assert.throws(() => validateRules(many), /at most 1024 rules, got 1025/);
  });
});
