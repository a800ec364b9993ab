// The configuration: dsr.conf lines carry over as dsrctl reads them, every
// error names the file, the line and the field, and a file that is not one
// (a device, a FIFO, something huge) is refused without reading it all.

import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseListenAddress } from '../src/config/config.js';
import { MAX_CONFIG_FILE_BYTES, MAX_CONFIG_FILES } from '../src/config/files.js';
import { configurationFrom, loadConfiguration, type Configuration } from '../src/config/load.js';
import { ConfigErrors } from '../src/config/parse.js';
import { hostPort } from '../src/daemon/control.js';
import { parseRunOptions } from '../src/cli/run-options.js';
import { isL3dsrError } from '../src/errors.js';

const F = '/etc/l3dsr.conf';
const fromText = (text: string, rules: string[] = []) => configurationFrom([{ file: F, text }], rules);

/** The problems a load reports (it must fail), as their messages. */
async function problems(load: Promise<unknown>): Promise<string[]> {
  try {
    await load;
  } catch (err) {
    assert.ok(err instanceof ConfigErrors, `not a ConfigErrors: ${(err as Error).stack}`);
    assert.equal(err.code, 'ERR_L3DSR_CONFIG');
    return err.problems.map((p) => p.message);
  }
  assert.fail('the configuration was accepted');
}

const summary = (c: Configuration) => [
  ...c.rules.map((r) => `l3dsr ${r.family} ${r.dscp} ${r.destination} ${r.origin}`),
  ...c.l2dsr.map((v) => `l2dsr ${v.family} - ${v.address} ${v.origin}`),
];

describe('configuration files', () => {
  it('reads dsr.conf lines, [vips], [daemon] and [rule NAME] with comments', async () => {
    const c = await fromText(`# carried over from /etc/dsr.d/web.conf
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
`);
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
    ['a hex DSCP out of range', '203.0.113.10 = 0x40', `${F}:1: dscp: expected an integer 0-63, got "0x40" (= 64)`],
    ['a value that is not a DSCP', '203.0.113.10 = one', `${F}:1: dscp: expected an integer 0-63, got "one" (decimal 33, octal 041 or hex 0x21)`],
    ['an octal DSCP with a digit 8', '203.0.113.10 = 018', `${F}:1: dscp: expected an integer 0-63, got "018"`],
    ['a duplicate DSCP in a family', '203.0.113.10 = 1\n\n203.0.113.11 = 1', `${F}:3: dscp: DSCP 1 is already used for IPv4 by rule ${F}:1 (VIP 203.0.113.10)`],
    ['an unknown daemon key', '[daemon]\nqueue = 2', `${F}:2: unknown setting "queue" in [daemon]; known: tun, steer`],
    ['a daemon key without a value', '[daemon]\nsteer', `${F}:2: expected "key = value" in [daemon], got "steer"`],
    ['queues out of range', '[daemon]\nqueues = 0', `${F}:2: queues: expected an integer 1-64, got "0"`],
    ['a bad metrics address', '[daemon]\nmetrics = localhost', `${F}:2: metrics: expected HOST:PORT`],
    ['a too-long interface name', '[daemon]\ntun = this-name-is-too-long', `${F}:2: tun: "this-name-is-too-long" is not an interface name`],
    ['an unknown section', '[vip]\n203.0.113.10 = 1', `${F}:1: unknown section [vip]; expected [daemon], [vips], [rule NAME] or [lb NAME]`],
    ['a VIP line with a space inside', '203.0.113.10 1', `${F}:1: expected "VIP = DSCP", or a VIP alone for L2DSR (e.g. 203.0.113.10 = 1), got "203.0.113.10 1"`],
    ['an L2DSR line with a bad VIP', '203.0.113.300', `${F}:1: destination: "203.0.113.300": expected a dotted-quad`],
    ['an address the resolver would read as hex', '0x0a.1.1.1 = 1', `${F}:1: destination: "0x0a.1.1.1": expected an IPv4 address`],
    ['a one-label number the resolver would read as 0.0.0.10', '0x0a = 1', `${F}:1: destination: "0x0a": expected an IPv4 address`],
    ['a host name that does not resolve (RFC 6761 .invalid)', 'vip.invalid = 1', `${F}:1: destination: "vip.invalid" does not resolve to an IPv4 address`],
    ['a rule without destination', '[rule a]\ndscp = 1', `${F}:1: [rule a] has no "destination"`],
    ['a rule key twice', '[rule a]\ndscp = 1\ndscp = 2', `${F}:3: "dscp" given twice in [rule a] (first at line 2)`],
    ['a prefix of the wrong family (at its own line)', '[rule a]\ndscp = 1\ndestination = 203.0.113.10\nmatch = 2001:db8::/32', `${F}:4: [rule a] match: "2001:db8::/32" is IPv6 but the destination 203.0.113.10 is IPv4`],
    ['a bad boolean', '[daemon]\nloopback-vips = maybe', `${F}:2: loopback-vips: expected yes or no, got "maybe"`],
    ['a log format that is not one', '[daemon]\nlog-level = info\nlog-format = xml', `${F}:3: log-format: expected one of logfmt, json, got "xml"`],
    ['__proto__ as a daemon key', '[daemon]\n__proto__ = x', `${F}:2: unknown setting "__proto__" in [daemon]`],
    ['constructor as a daemon key', '[daemon]\nconstructor = x', `${F}:2: unknown setting "constructor" in [daemon]`],
    ['hasOwnProperty as a daemon key', '[daemon]\nhasOwnProperty = 1', `${F}:2: unknown setting "hasOwnProperty" in [daemon]`],
    ['__proto__ as a rule key', '[rule a]\n__proto__ = 1', `${F}:2: unknown key "__proto__" in [rule a]`],
  ];
  for (const [name, text, message] of bad) {
    it(`refuses ${name}, naming file, line and field`, async () => {
      const [first] = await problems(fromText(text));
      assert.ok(first.startsWith(message), `got: ${first}`);
    });
  }

  it('reads log-format in [daemon], as --log-format takes it', async () => {
    for (const format of ['logfmt', 'json'] as const) {
      const c = await fromText(`203.0.113.10 = 1\n[daemon]\nlog-format = ${format}\n`);
      assert.deepEqual(c.daemon, { logFormat: format });
    }
  });

  it('names the line of the field, not of its [rule] header', async () => {
    const text = `${'# filler\n'.repeat(23)}[rule video]\ndscp = 64\ndestination = 203.0.113.30\n`;
    assert.deepEqual(await problems(fromText(text)), [`${F}:25: [rule video] dscp: expected an integer 0-63, got "64"`]);
  });

  it('reports every problem of a load, in order, not just the first', async () => {
    const found = await problems(fromText('203.0.113.10 = 64\n203.0.113.11 = 2\n203.0.113.12 = 2\n[daemon]\nqueues = 0\n'));
    assert.deepEqual(found, [
      `${F}:1: dscp: expected an integer 0-63, got "64"`,
      `${F}:3: dscp: DSCP 2 is already used for IPv4 by rule ${F}:2 (VIP 203.0.113.11)`,
      `${F}:5: queues: expected an integer 1-64, got "0"`,
    ]);
  });

  it('refuses more rules than the core holds, and as many L2DSR VIPs, at the first one too many', async () => {
    const rules = Array.from({ length: 1025 }, (_, i) => `[rule r${i}]\ndscp = 1\ndestination = 2001:db8:203::10\nmatch = 2001:db8:${i.toString(16)}::/48\n`).join('');
    assert.deepEqual(await problems(fromText(rules)), [`${F}:${1024 * 4 + 2}: at most 1024 rules, got 1025`]);
    const l2 = Array.from({ length: 1025 }, (_, i) => `2001:db8:99::${i.toString(16)}\n`).join('');
    assert.deepEqual(await problems(fromText(`203.0.113.10 = 1\n${l2}`)), [`${F}:1026: at most 1024 L2DSR VIPs`]);
  });

  it('warns about a DSCP 0 rule', async () => {
    assert.match((await fromText('203.0.113.10 = 0')).warnings[0], /DSCP 0 is the default class/);
  });
});

describe('the dsr.conf dialect, as dsrctl reads it', () => {
  it('DSCP in decimal, octal and hex; hex IPv6 in either case; spaces and tabs around =; # right after a value', async () => {
    const c = await fromText([
      '203.0.113.1=041',
      '203.0.113.2 = 0x22',
      '203.0.113.3\t=\t0X23',
      '2001:DB8::A=0x21',
      '203.0.113.4=8#no space before the comment',
      '  203.0.113.5  =  12  ',
    ].join('\n'));
    assert.deepEqual(summary(c), [
      `l3dsr 4 33 203.0.113.1 ${F}:1`,
      `l3dsr 4 34 203.0.113.2 ${F}:2`,
      `l3dsr 4 35 203.0.113.3 ${F}:3`,
      `l3dsr 6 33 2001:db8::a ${F}:4`,
      `l3dsr 4 8 203.0.113.4 ${F}:5`,
      `l3dsr 4 12 203.0.113.5 ${F}:6`,
    ]);
  });

  it('a VIP without =DSCP is L2DSR: no rule for the core, its own list', async () => {
    const c = await fromText('203.0.113.10 = 1\n203.0.113.99\n2001:db8::99   # IPv6 L2DSR\n[vips]\n203.0.113.98\n');
    assert.deepEqual(summary(c), [
      `l3dsr 4 1 203.0.113.10 ${F}:1`,
      `l2dsr 4 - 203.0.113.99 ${F}:2`,
      `l2dsr 6 - 2001:db8::99 ${F}:3`,
      `l2dsr 4 - 203.0.113.98 ${F}:5`,
    ]);
  });

  it('the same VIP on several DSCPs; an exact repeat is loaded once, with a warning naming both lines', async () => {
    const c = await fromText('203.0.113.1 = 1\n203.0.113.1 = 2\n203.0.113.1 = 0x1\n203.0.113.99\n203.0.113.99\n');
    assert.deepEqual(summary(c), [`l3dsr 4 1 203.0.113.1 ${F}:1`, `l3dsr 4 2 203.0.113.1 ${F}:2`, `l2dsr 4 - 203.0.113.99 ${F}:4`]);
    assert.deepEqual([...c.warnings].sort(), [
      `${F}:5: repeats the L2DSR VIP 203.0.113.99 of ${F}:4; loaded once`,
      `rule ${F}:3: repeats rule ${F}:1 (1=203.0.113.1); loaded once`,
    ]);
  });

  it('two VIPs of a family on one DSCP written in different bases conflict, naming both places', async () => {
    assert.deepEqual(await problems(fromText('203.0.113.5 = 041\n203.0.113.6 = 0x21\n')),
      [`${F}:2: dscp: DSCP 33 is already used for IPv4 by rule ${F}:1 (VIP 203.0.113.5)`]);
  });

  it('an IPv4 VIP may be a host name, resolved to IPv4 at load (localhost is 127.0.0.1 everywhere)', async () => {
    const c = await fromText('localhost = 7\n');
    assert.deepEqual(summary(c), [`l3dsr 4 7 127.0.0.1 ${F}:1`]);
  });

  it('--rule stays numeric: a host name is refused there', async () => {
    assert.deepEqual(await problems(fromText('', ['1=localhost'])),
      ['--rule 1=localhost: destination: "localhost": expected an IPv4 address (203.0.113.10) or an IPv6 address (2001:db8::10)']);
  });

  it('a conflict between --rule and a file reads like one within a file: FILE:LINE first', async () => {
    assert.deepEqual(await problems(fromText('203.0.113.11 = 1\n', ['1=203.0.113.10'])),
      [`${F}:1: dscp: DSCP 1 is already used for IPv4 by rule --rule 1=203.0.113.10 (VIP 203.0.113.10)`]);
  });
});

describe('--config paths: files and directories', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'l3dsr-config-')); });
  after(() => { rmSync(dir, { recursive: true, force: true }); });

  const fresh = (name: string) => {
    const d = join(dir, name);
    mkdirSync(d);
    return d;
  };

  it('a directory: its *.conf files in byte order of their names, nothing else', async () => {
    const d = fresh('dsr.d');
    // Byte order, not the locale's: "B" (0x42) before "a" (0x61); U+FF21 (EF BC A1)
    // before U+1F600 (F0 9F 98 80), which UTF-16 order would swap.
    writeFileSync(join(d, 'a.conf'), '203.0.113.1 = 1\n');
    writeFileSync(join(d, 'B.conf'), '203.0.113.2 = 2\n');
    writeFileSync(join(d, '\u{1F600}.conf'), '203.0.113.3 = 3\n');
    writeFileSync(join(d, '\uFF21.conf'), '203.0.113.4 = 4\n');
    writeFileSync(join(d, '20 with spaces.conf'), '203.0.113.5 = 5\n');
    writeFileSync(join(d, 'README'), 'not a config\n');
    writeFileSync(join(d, 'x.conf.bak'), 'not a config\n');
    writeFileSync(join(d, '.hidden.conf'), 'not a config\n');
    mkdirSync(join(d, 'sub'));
    writeFileSync(join(d, 'sub', 'nested.conf'), 'not read: subdirectories are not\n');
    mkdirSync(join(d, 'dir.conf'));
    symlinkSync(join(d, 'a.conf'), join(d, 'link.conf'));
    const c = await loadConfiguration({ configs: [d] });
    const names = ['20 with spaces.conf', 'B.conf', 'a.conf', 'link.conf', '\uFF21.conf', '\u{1F600}.conf'];
    assert.deepEqual(c.files, names.map((n) => join(d, n)));
    // link.conf repeats a.conf: loaded once, as dsrctl loads an exact repeat once.
    assert.deepEqual(c.rules.map((r) => r.dscp), [5, 2, 1, 4, 3]);
    assert.match(c.warnings.join('\n'), /link\.conf:1: repeats rule .*a\.conf:1/);
  });

  it('a file is still accepted, whatever its name; several --config are read in order, their VIPs checked together', async () => {
    const d = fresh('several');
    writeFileSync(join(d, 'first'), '203.0.113.1 = 1\n');
    writeFileSync(join(d, 'second.txt'), '# a file of any name\n\n\n203.0.113.2 = 1\n[daemon]\ntun = dsr9\n');
    assert.deepEqual(await problems(loadConfiguration({ configs: [join(d, 'first'), join(d, 'second.txt')] })),
      [`${join(d, 'second.txt')}:4: dscp: DSCP 1 is already used for IPv4 by rule ${join(d, 'first')}:1 (VIP 203.0.113.1)`]);
    writeFileSync(join(d, 'second.txt'), '# a file of any name\n\n\n203.0.113.2 = 2\n[daemon]\ntun = dsr9\n');
    const c = await loadConfiguration({ configs: [join(d, 'first'), join(d, 'second.txt')] });
    assert.deepEqual(c.rules.map((r) => r.origin), [`${join(d, 'first')}:1`, `${join(d, 'second.txt')}:4`]);
    assert.equal(c.daemon.tun, 'dsr9');
  });

  it('an empty directory is an error when it is all there is, a warning beside other rules', async () => {
    const d = fresh('empty');
    writeFileSync(join(d, 'notes.txt'), 'no *.conf here\n');
    assert.deepEqual(await problems(loadConfiguration({ configs: [d] })), [`${d}: no *.conf files in the directory`]);
    const c = await loadConfiguration({ configs: [d], rules: ['1=203.0.113.10'] });
    assert.deepEqual(c.warnings, [`${d}: no *.conf files in the directory`]);
  });

  it('refuses /dev/zero at once instead of reading it', async () => {
    assert.deepEqual(await problems(loadConfiguration({ configs: ['/dev/zero'] })),
      ['/dev/zero: not a regular file (a character device): a configuration is a file, or a directory of *.conf files']);
  });

  it('refuses a FIFO without waiting for a writer, also inside a directory', { timeout: 10_000 }, async () => {
    const d = fresh('fifo');
    execFileSync('mkfifo', [join(d, 'pipe.conf')]);
    assert.deepEqual(await problems(loadConfiguration({ configs: [join(d, 'pipe.conf')] })),
      [`${join(d, 'pipe.conf')}: not a regular file (a FIFO): a configuration is a file, or a directory of *.conf files`]);
    assert.deepEqual(await problems(loadConfiguration({ configs: [d] })),
      [`${join(d, 'pipe.conf')}: not a regular file (a FIFO): a configuration is a file, or a directory of *.conf files`]);
  });

  it('refuses a file larger than the limit', async () => {
    const big = join(dir, 'big.conf');
    writeFileSync(big, `${'#'.repeat(MAX_CONFIG_FILE_BYTES)}\n`);
    assert.deepEqual(await problems(loadConfiguration({ configs: [big] })), [`${big}: larger than 1 MiB: not a configuration file`]);
  });

  it('bounds the read itself, not a size from stat: /proc/kallsyms says 0 bytes and holds megabytes',
    { skip: existsSync('/proc/kallsyms') ? false : 'no /proc/kallsyms here' }, async () => {
      assert.deepEqual(await problems(loadConfiguration({ configs: ['/proc/kallsyms'] })), ['/proc/kallsyms: larger than 1 MiB: not a configuration file']);
    });

  it('refuses a directory of more *.conf files than the limit', async () => {
    const d = fresh('many');
    for (let i = 0; i <= MAX_CONFIG_FILES; i++) writeFileSync(join(d, `${i}.conf`), '');
    assert.deepEqual(await problems(loadConfiguration({ configs: [d] })), [`${d}: more than ${MAX_CONFIG_FILES} *.conf files in the directory`]);
  });

  it('a path that does not exist', async () => {
    assert.deepEqual(await problems(loadConfiguration({ configs: [join(dir, 'missing.conf')] })), [`${join(dir, 'missing.conf')}: cannot read the file (ENOENT)`]);
  });
});

describe('listen addresses (metrics): IP literals, all interfaces only when asked', () => {
  const good: [string, { host: string; port: number }][] = [
    ['127.0.0.1:9109', { host: '127.0.0.1', port: 9109 }],
    ['[::1]:9109', { host: '::1', port: 9109 }],
    ['0.0.0.0:9109', { host: '0.0.0.0', port: 9109 }],
    ['[::]:9109', { host: '::', port: 9109 }],
    ['[2001:DB8::1]:65535', { host: '2001:db8::1', port: 65535 }],
  ];
  for (const [text, want] of good) {
    it(`${text}: the config parser and the server that binds it agree`, () => {
      assert.deepEqual(parseListenAddress(text), want);
      assert.deepEqual(hostPort(text), want);
    });
  }
  const bad: [string, RegExp][] = [
    ['999.1.1.1:9109', /"999\.1\.1\.1": expected a dotted-quad decimal IPv4 address/],
    ['010.0.0.1:9109', /"010\.0\.0\.1": expected a dotted-quad decimal/],
    ['localhost:9109', /"localhost": expected an IPv4 address/],
    [':9109', /no address before ":9109": write 127\.0\.0\.1:9109 for this host only, or 0\.0\.0\.0:9109 or \[::\]:9109 for all interfaces/],
    ['[127.0.0.1]:9109', /only an IPv6 address goes in brackets/],
    ['127.0.0.1:0', /expected a port 1-65535/],
    ['127.0.0.1:65536', /expected a port 1-65535/],
    ['::1:9109', /expected HOST:PORT/],
    ['[fe80::1%eth0]:9109', /zone ids are not allowed/],
  ];
  for (const [text, why] of bad) {
    it(`refuses ${text}, and so does the server`, () => {
      const parsed = parseListenAddress(text);
      assert.equal(typeof parsed, 'string');
      assert.match(parsed as string, why);
      assert.throws(() => hostPort(text), why);
    });
  }
});

describe('l3dsr run options: validated before anything starts', () => {
  let dir: string;
  before(() => { dir = mkdtempSync(join(tmpdir(), 'l3dsr-options-')); });
  after(() => { rmSync(dir, { recursive: true, force: true }); });
  const RUN = ['--no-steer'];

  it('--metrics must be an IP literal: 999.1.1.1:9109 and :9109 are refused', async () => {
    await assert.rejects(parseRunOptions([...RUN, '--rule', '1=203.0.113.10', '--metrics', '999.1.1.1:9109']),
      (err: Error) => isL3dsrError(err, 'ERR_L3DSR_USAGE') && /^--metrics: "999\.1\.1\.1": expected a dotted-quad/.test(err.message));
    await assert.rejects(parseRunOptions([...RUN, '--rule', '1=203.0.113.10', '--metrics', ':9109']),
      (err: Error) => isL3dsrError(err, 'ERR_L3DSR_USAGE') && /^--metrics: no address before ":9109"/.test(err.message));
  });

  it('a conflict of --config with --rule reads FILE:LINE: dscp, as one within a file does (and as a reload reports it)', async () => {
    const file = join(dir, 'clash.conf');
    writeFileSync(file, '203.0.113.11 = 1\n');
    await assert.rejects(parseRunOptions([...RUN, '--rule', '1=203.0.113.10', '--config', file]),
      (err: Error) => err.message === `${file}:1: dscp: DSCP 1 is already used for IPv4 by rule --rule 1=203.0.113.10 (VIP 203.0.113.10)`);
  });

  it('--config twice loads both, in order', async () => {
    writeFileSync(join(dir, 'a.conf'), '203.0.113.1 = 1\n');
    writeFileSync(join(dir, 'b.conf'), '203.0.113.2 = 2\n203.0.113.99\n');
    const o = await parseRunOptions([...RUN, '--config', join(dir, 'a.conf'), '--config', join(dir, 'b.conf')]);
    assert.deepEqual(o.configPaths, [join(dir, 'a.conf'), join(dir, 'b.conf')]);
    assert.deepEqual(o.rules.map((r) => r.origin), [`${join(dir, 'a.conf')}:1`, `${join(dir, 'b.conf')}:1`]);
    assert.deepEqual(o.l2dsr.map((v) => v.address), ['203.0.113.99']);
    assert.match(o.warnings.join('\n'), /L2DSR VIPs 203\.0\.113\.99: loopback-vips is off/);
  });

  it("a flag wins over the [daemon] setting; the file's applies without one, the default without either", async () => {
    const file = join(dir, 'daemon.conf');
    writeFileSync(file, '203.0.113.10 = 1\n[daemon]\nlog-format = json\nlog-level = debug\nqueues = 2\n');
    const fromFile = await parseRunOptions([...RUN, '--config', file]);
    assert.deepEqual([fromFile.logFormat, fromFile.logLevel, fromFile.queues, fromFile.batch], ['json', 'debug', 2, 64]);
    const flagged = await parseRunOptions([...RUN, '--config', file, '--log-format', 'logfmt', '--queues', '3']);
    assert.deepEqual([flagged.logFormat, flagged.logLevel, flagged.queues], ['logfmt', 'debug', 3]);
    // What the flags said is kept apart: on reload they keep winning over the file.
    assert.deepEqual(Object.entries(flagged.flags).filter(([, v]) => v !== undefined), [['noSteer', true], ['queues', 3], ['logFormat', 'logfmt']]);
  });

  for (const flag of [['--tun', 'a', '--tun', 'b'], ['--queues', '1', '--queues', '2'], ['--metrics', '127.0.0.1:1', '--metrics', '127.0.0.1:2']]) {
    it(`refuses ${flag[0]} given twice instead of taking the last`, async () => {
      await assert.rejects(parseRunOptions([...RUN, '--rule', '1=203.0.113.10', ...flag]),
        (err: Error) => isL3dsrError(err, 'ERR_L3DSR_USAGE') && err.message.startsWith(`${flag[0]} given twice: give it once`));
    });
  }
});

describe('the example configuration shipped in deploy/', () => {
  it('loads, so the documented example stays true', async () => {
    const c = await loadConfiguration({ configs: [new URL('../../deploy/l3dsr.conf.example', import.meta.url).pathname] });
    assert.equal(c.daemon.tun, 'dsr0');
    assert.deepEqual(c.rules.map((r) => `${r.dscp}=${r.destination}`), ['1=203.0.113.10', '1=2001:db8:203::10', '17=203.0.113.20', '18=203.0.113.30']);
    assert.deepEqual(c.l2dsr.map((v) => v.address), ['203.0.113.99']);
    assert.deepEqual(c.warnings, []);
  });
});
