// The configuration file: dsr.conf lines carry over, every error names the
// file, the line and the field.

import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../src/config/config.js';

const F = '/etc/l3dsr.conf';

describe('configuration files', () => {
  it('reads dsr.conf lines, [vips], [daemon] and [rule NAME] with comments', () => {
    const c = parseConfig(`# carried over from /etc/dsr.d/web.conf
203.0.113.10=1
2001:db8:203::10 = 1   # IPv6 VIP on the same DSCP

[daemon]
tun = dsr0
steer = eth0, eth1
queues = 2
metrics = 127.0.0.1:9109
loopback-vips = yes
engine = io_uring

[vips]
203.0.113.20 = 17 ; DSCP >= 8

[rule rip-side]
dscp = 5
destination = 203.0.113.50
match = 198.51.100.0/24
set-dscp = 0
`, F);
    assert.deepEqual(c.daemon, { tun: 'dsr0', steer: ['eth0', 'eth1'], queues: 2, metrics: '127.0.0.1:9109', loopbackVips: true, engine: 'io_uring' });
    assert.deepEqual(c.rules.map((r) => [r.family, r.dscp, r.destination, r.origin]), [
      [4, 1, '203.0.113.10', `${F}:2`],
      [6, 1, '2001:db8:203::10', `${F}:3`],
      [4, 17, '203.0.113.20', `${F}:14`],
      [4, 5, '203.0.113.50', `${F}:16 [rule rip-side]`],
    ]);
    assert.deepEqual(c.rules[3].match, { address: '198.51.100.0', length: 24 });
    assert.equal(c.rules[3].setDscp, 0);
  });

  const bad: [string, string, string][] = [
    ['a bad VIP', '203.0.113.300 = 1', `${F}:1: destination: "203.0.113.300": expected a dotted-quad`],
    ['a DSCP out of range', '203.0.113.10 = 64', `${F}:1: dscp: expected an integer 0-63, got "64"`],
    ['a value that is not a DSCP', '203.0.113.10 = one', `${F}:1: expected "VIP = DSCP" (e.g. 203.0.113.10 = 1), but "one" is not a DSCP number`],
    ['a duplicate DSCP in a family', '203.0.113.10 = 1\n\n203.0.113.11 = 1', `${F}:3: dscp: DSCP 1 is already used for IPv4 by rule ${F}:1`],
    ['an unknown daemon key', '[daemon]\nqueue = 2', `${F}:2: unknown setting "queue" in [daemon]; known: tun, steer`],
    ['queues out of range', '[daemon]\nqueues = 0', `${F}:2: queues: expected an integer 1-64, got "0"`],
    ['a bad metrics address', '[daemon]\nmetrics = localhost', `${F}:2: metrics: expected HOST:PORT`],
    ['a too-long interface name', '[daemon]\ntun = this-name-is-too-long', `${F}:2: tun: "this-name-is-too-long" is not an interface name`],
    ['an unknown section', '[vip]\n203.0.113.10 = 1', `${F}:1: unknown section [vip]; expected [daemon], [vips] or [rule NAME]`],
    ['a line without "="', '203.0.113.10 1', `${F}:1: expected "key = value", got "203.0.113.10 1"`],
    ['a rule without destination', '[rule a]\ndscp = 1', `${F}:1: [rule a] has no "destination"`],
    ['a rule key twice', '[rule a]\ndscp = 1\ndscp = 2', `${F}:3: "dscp" given twice in [rule a] (first at line 2)`],
    ['a prefix of the wrong family', '[rule a]\ndscp = 1\ndestination = 203.0.113.10\nmatch = 2001:db8::/32', `${F}:1: [rule a] match: "2001:db8::/32" is IPv6 but the destination 203.0.113.10 is IPv4`],
    ['a bad boolean', '[daemon]\nloopback-vips = maybe', `${F}:2: loopback-vips: expected yes or no, got "maybe"`],
  ];
  for (const [name, text, message] of bad) {
    it(`refuses ${name}, naming file, line and field`, () => {
      assert.throws(() => parseConfig(text, F), (err: Error & { code?: string }) => {
        assert.equal(err.code, 'ERR_L3DSR_CONFIG');
        assert.ok(err.message.startsWith(message), `got: ${err.message}`);
        return true;
      });
    });
  }

  it('warns about a DSCP 0 rule', () => {
    assert.match(parseConfig('203.0.113.10 = 0', F).warnings[0], /DSCP 0 is the default class/);
  });
});

describe('the example configuration shipped in deploy/', () => {
  it('parses, so the documented example stays true', async () => {
    const { loadConfig } = await import('../src/config/config.js');
    const c = await loadConfig(new URL('../../deploy/l3dsr.conf.example', import.meta.url).pathname);
    assert.equal(c.daemon.tun, 'dsr0');
    assert.deepEqual(c.rules.map((r) => `${r.dscp}=${r.destination}`), ['1=203.0.113.10', '1=2001:db8:203::10', '17=203.0.113.20', '18=203.0.113.30']);
  });
});
