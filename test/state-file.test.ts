// parseState: every field of a state file is checked against what the
// daemon itself writes before anything acts on it; each refusal names the
// file and the field. earlierRun clears away what a write cut short left.
// (The daemon's use of it is in daemon-takeover.test.ts.)
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { earlierRun, parseState, StateFileError } from '../src/daemon/state-file.js';

const FILE = '/run/l3dsr/dsr0.netns-4026531840.state.json';
const GOOD = {
  pid: 4242,
  startTime: 123456,
  netns: { inode: 4026531840, cookie: '1' },
  tun: 'dsr0',
  steering: { createdClsact: ['eth0'], sysctls: { 'net/ipv4/conf/all/rp_filter': '1', 'net/ipv4/conf/dsr0/rp_filter': '2' } },
  loopback: [{ family: 4, address: '203.0.113.10' }, { family: 6, address: '2001:db8:203:0:0:0:0:10' }],
};

const bad: [string, (s: Record<string, any>) => void, RegExp][] = [
  ['an unknown field', (s) => { s.command = 'rm -rf /'; }, /command: not a field of a state file/],
  ['pid 0', (s) => { s.pid = 0; }, /pid: expected a process id, got 0/],
  ['pid as text', (s) => { s.pid = '4242'; }, /pid: expected a process id/],
  ['no start time', (s) => { delete s.startTime; }, /startTime: expected clock ticks, got undefined/],
  ['a cookie that is not a number', (s) => { s.netns.cookie = '1; reboot'; }, /netns: expected \{ inode, cookie \}/],
  ['another TUN', (s) => { s.tun = 'dsr1'; }, /tun: expected "dsr0" \(the TUN of this daemon\), got "dsr1"/],
  ['ip_forward', (s) => { s.steering.sysctls = { 'net/ipv4/ip_forward': '1' }; }, /steering\.sysctls: "net\/ipv4\/ip_forward" is not a sysctl l3dsr sets \(only net\/ipv4\/conf\/all\/rp_filter, net\/ipv4\/conf\/dsr0\/rp_filter\)/],
  ['proxy_arp', (s) => { s.steering.sysctls = { 'net/ipv4/conf/all/proxy_arp': '1' }; }, /steering\.sysctls: "net\/ipv4\/conf\/all\/proxy_arp" is not a sysctl/],
  ['the dotted form of rp_filter', (s) => { s.steering.sysctls = { 'net.ipv4.conf.all.rp_filter': '1' }; }, /steering\.sysctls: "net\.ipv4\.conf\.all\.rp_filter" is not a sysctl/],
  ['rp_filter 3', (s) => { s.steering.sysctls['net/ipv4/conf/all/rp_filter'] = '3'; }, /steering\.sysctls\.net\/ipv4\/conf\/all\/rp_filter: expected one of 0, 1, 2, got "3"/],
  ['rp_filter as a number', (s) => { s.steering.sysctls['net/ipv4/conf/all/rp_filter'] = 1; }, /expected one of 0, 1, 2, got 1/],
  ['createdClsact not a list', (s) => { s.steering.createdClsact = 'eth0'; }, /steering: expected \{ createdClsact: \[\.\.\.\], sysctls: \{\.\.\.\} \}/],
  ['an interface name starting with -', (s) => { s.steering.createdClsact = ['-batch']; }, /steering\.createdClsact: "-batch" is not an interface name/],
  ['an interface name with a slash', (s) => { s.steering.createdClsact = ['../lo']; }, /steering\.createdClsact: "\.\.\/lo" is not an interface name/],
  ['an interface name too long', (s) => { s.steering.createdClsact = ['a-very-long-name0']; }, /is not an interface name/],
  ['family "batch"', (s) => { s.loopback = [{ family: 'batch', address: '203.0.113.10' }]; }, /loopback\[0\]: expected \{ family: 4 or 6, address \}/],
  ['family "4"', (s) => { s.loopback = [{ family: '4', address: '203.0.113.10' }]; }, /loopback\[0\]: expected \{ family: 4 or 6, address \}/],
  ['an address that does not parse', (s) => { s.loopback = [{ family: 4, address: '203.0.113.10 dev eth0' }]; }, /loopback\[0\]: "203\.0\.113\.10 dev eth0": expected/],
  ['an address of the other family', (s) => { s.loopback = [{ family: 6, address: '203.0.113.10' }]; }, /loopback\[0\]: 203\.0\.113\.10 is not an IPv6 address/],
  ['::1', (s) => { s.loopback = [{ family: 6, address: '::1' }]; }, /loopback\[0\]: ::1 belongs to lo itself/],
  ['127.0.0.1', (s) => { s.loopback = [{ family: 4, address: '127.0.0.1' }]; }, /loopback\[0\]: 127\.0\.0\.1 belongs to lo itself/],
  ['no loopback list', (s) => { s.loopback = null; }, /loopback: expected a list of addresses, got null/],
];

describe('parseState', () => {
  it('accepts what the daemon writes, addresses in canonical form', () => {
    const s = parseState(JSON.stringify(GOOD), FILE, 'dsr0');
    assert.deepEqual(s, { ...GOOD, loopback: [{ family: 4, address: '203.0.113.10' }, { family: 6, address: '2001:db8:203::10' }] });
  });

  it('a file that is not JSON: names the file', () => {
    assert.throws(() => parseState('{"pid": 1, "loopback": [', FILE, 'dsr0'), (e: unknown) =>
      e instanceof StateFileError && e.code === 'ERR_L3DSR_STATE_FILE' && e.message.startsWith(`${FILE}: (file): not JSON: `));
    assert.throws(() => parseState('[]', FILE, 'dsr0'), new RegExp(`^StateFileError: ${FILE.replace(/\./g, '\\.')}: \\(file\\): expected a JSON object$`));
  });

  for (const [name, change, says] of bad) {
    it(`refuses ${name}, naming the file and the field`, () => {
      const s = structuredClone(GOOD) as Record<string, any>;
      change(s);
      assert.throws(() => parseState(JSON.stringify(s), FILE, 'dsr0'), (e: unknown) => {
        assert.ok(e instanceof StateFileError, String(e));
        assert.ok(e.message.startsWith(`${FILE}: `), e.message);
        assert.match(e.message, says);
        return true;
      });
    });
  }
});

// writeState writes a temporary file and renames it into place; a kill -9
// between the two leaves the temporary behind, in the runtime directory.
describe('the temporary files of a writeState cut short', () => {
  /** A pid that named a process a moment ago and names none now. */
  const deadPid = (): number => {
    const r = spawnSync('true');
    assert.equal(r.status, 0);
    return r.pid!;
  };

  it('the next run removes those of dead writers beside its state file, and nothing else', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'l3dsr-state-tmp-'));
    try {
      const path = join(dir, 'dsr0.netns-4026531840.state.json');
      const dead = `${path}.${deadPid()}.0123456789ab.tmp`;
      const kept = [
        `${path}.${process.pid}.0123456789ab.tmp`, // a writer that runs (here: this process)
        `${join(dir, 'dsr1.netns-4026531840.state.json')}.${deadPid()}.0123456789ab.tmp`, // another daemon's
        `${path}.${deadPid()}.0123.tmp`, // not a name writeState makes
      ];
      for (const f of [dead, ...kept]) writeFileSync(f, '{}');
      mkdirSync(`${path}.${deadPid()}.ba9876543210.tmp`); // not a regular file
      assert.deepEqual(await earlierRun(path, 'dsr0', { inode: 4026531840, cookie: '1' }), { kind: 'none' });
      assert.equal(existsSync(dead), false, 'the temporary of a dead writer is still there');
      for (const f of kept) assert.ok(existsSync(f), `${f} was removed`);
      assert.equal(readdirSync(dir).length, kept.length + 1);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
