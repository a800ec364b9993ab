// One rule for interface names (the kernel's dev_valid_name on the UTF-8
// bytes, no control characters, no leading "-"), the same through --tun/--steer and the
// config file. The TUN addon's own refusal is tested in tun.test.ts.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../src/config/config.js';
import { ConfigError } from '../src/config/parse.js';
import { parseRunOptions } from '../src/cli/run-options.js';
import { isL3dsrError } from '../src/errors.js';
import { MAX_INTERFACE_NAME, interfaceNameProblem } from '../src/system/interface-name.js';

const VALID = ['eth0', 'dsr0', 'a', 'x'.repeat(MAX_INTERFACE_NAME), 'eth0.100', 'br-lan_2', 'tün0', `${'a'.repeat(MAX_INTERFACE_NAME - 3)}€`, 'vlan@3', '...'];

const INVALID: [string, 'ENAMETOOLONG' | 'EINVAL', RegExp][] = [
  ['', 'EINVAL', /it is empty/],
  ['x'.repeat(MAX_INTERFACE_NAME + 1), 'ENAMETOOLONG', /16 characters, and the kernel's limit is 15 bytes/],
  // 15 characters, 17 bytes: what a copy into 16 bytes cut short.
  [`${'a'.repeat(14)}€`, 'ENAMETOOLONG', /15 characters but 17 bytes in UTF-8/],
  [`${'a'.repeat(14)}é`, 'ENAMETOOLONG', /15 characters but 16 bytes in UTF-8/],
  ['.', 'EINVAL', /refuses "\." and "\.\."/],
  ['..', 'EINVAL', /refuses/],
  ['a/b', 'EINVAL', /refuses "\/"/],
  ['eth0:1', 'EINVAL', /refuses ":"/],
  ['a b', 'EINVAL', /space or a control character/],
  ['a\tb', 'EINVAL', /space or a control character/],
  ['a\u0000b', 'EINVAL', /space or a control character/],
  ['a\u007fb', 'EINVAL', /space or a control character/],
  ['tà', 'EINVAL', /"à" holds byte 0xA0/],
  ['a\u00a0b', 'EINVAL', /holds byte 0xA0/],
  ['t\ud800', 'EINVAL', /lone UTF-16 surrogate/],
  // The kernel takes it; ip and tc would read it as an option.
  ['-h', 'EINVAL', /starts with "-", which ip and tc would read as an option/],
];

test('interfaceNameProblem: the kernel\'s rule on UTF-8 bytes', () => {
  for (const name of VALID) assert.equal(interfaceNameProblem(name), undefined, JSON.stringify(name));
  for (const [name, errno, why] of INVALID) {
    const problem = interfaceNameProblem(name);
    assert.equal(problem?.errno, errno, JSON.stringify(name));
    assert.match(problem.message, why, JSON.stringify(name));
    assert.ok(problem.message.startsWith(`${JSON.stringify(name)} is not an interface name: `), problem.message);
  }
});

test('--tun and --steer follow the rule', async () => {
  const base = ['--rule', '1=203.0.113.10'];
  const ok = await parseRunOptions([...base, '--tun', 'tün0', '--steer', 'eth0', '--steer', 'vlan@3']);
  assert.equal(ok.tun, 'tün0');
  assert.deepEqual(ok.steer, ['eth0', 'vlan@3']);
  for (const [name, , why] of INVALID.filter(([n]) => n !== '')) {
    for (const flag of ['--tun', '--steer']) {
      // Inline (--tun=NAME), so that a name starting with "-" reaches the name check.
      const args = flag === '--tun' ? [...base, '--steer', 'eth0', `--tun=${name}`] : [...base, `--steer=${name}`];
      await assert.rejects(parseRunOptions(args), (err: unknown) => {
        assert.ok(isL3dsrError(err, 'ERR_L3DSR_USAGE'), String(err));
        assert.ok(err.message.startsWith(`${flag}: ${JSON.stringify(name)} is not an interface name: `), err.message);
        assert.match(err.message, why);
        return true;
      }, `${flag} ${JSON.stringify(name)}`);
    }
  }
});

test('tun and steer in the config file follow the rule, with file and line', () => {
  const F = '/etc/l3dsr.conf';
  const ok = parseConfig('[daemon]\ntun = tün0\nsteer = eth0', F);
  assert.deepEqual(ok.problems, []);
  assert.equal(ok.daemon.tun, 'tün0');
  for (const [name, , why] of INVALID.filter(([n]) => !/[\s,]/.test(n) && n !== '')) {
    for (const key of ['tun', 'steer']) {
      const { problems } = parseConfig(`[daemon]\n${key} = ${name}\n`, F);
      assert.equal(problems.length, 1, `${key} = ${JSON.stringify(name)}: ${problems.map(String).join('; ')}`);
      const [err] = problems;
      assert.ok(err instanceof ConfigError, String(err));
      assert.ok(err.message.startsWith(`${F}:2: ${key}: ${JSON.stringify(name)} is not an interface name: `), err.message);
      assert.match(err.message, why);
    }
  }
});
