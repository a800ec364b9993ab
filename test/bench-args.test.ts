// The bench scripts' command line (bench/support/args.ts): every script an
// npm script runs answers --help with its synopsis and options and exits 0
// before doing anything; the help is written from the option table the
// parser reads (placeholders, defaults, internal options left out); bad
// usage is a usage error naming the option, exit 2.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { benchHelp, benchSynopsis, parseBenchArgs, positiveInt, positiveNumber } from '../bench/support/args.js';
import { isL3dsrError } from '../src/errors.js';

/** The checkout: this file runs as dist/test/NAME.test.js. */
const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** npm script name -> the bench script it runs (dist/bench/NAME.js), from package.json. */
function benchScripts(): [string, string][] {
  const { scripts } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> };
  return Object.entries(scripts).flatMap(([name, line]) => {
    const m = /\bnode (dist\/bench\/[\w-]+\.js)\b/.exec(line);
    return m ? [[name, m[1]!] as [string, string]] : [];
  });
}

const run = (script: string, args: string[]) =>
  // A timeout bounds a script that ignores --help and starts measuring.
  spawnSync(process.execPath, [join(ROOT, script), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });

const CMD = {
  command: 'npm run bench:x --',
  about: 'What x measures.',
  options: {
    reps: { type: 'string', default: '5', value: 'N', help: 'interleaved repetitions' },
    sink: { type: 'string', default: 'read', value: 'read|hold', help: 'read: the socket is read;\nhold: it is not' },
    rate: { type: 'string', value: 'PPS', help: 'paced instead of a flood' },
    pin: { type: 'boolean', default: false, help: 'pin the rewriter' },
    role: { type: 'string', internal: true, help: 'the child process' },
  },
} as const;

describe('every bench script npm runs', () => {
  const scripts = benchScripts();
  it('is found in package.json', () => {
    assert.ok(scripts.length >= 7, `bench scripts in package.json: ${scripts.map(([n]) => n).join(', ')}`);
  });
  for (const [name, script] of scripts) {
    it(`${name}: --help and -h print its synopsis and options, exit 0, nothing else`, () => {
      for (const flag of ['--help', '-h']) {
        const r = run(script, [flag]);
        assert.equal(r.status, 0, `${script} ${flag}: status ${r.status} ${r.signal ?? ''}\n${r.stderr}`);
        assert.ok(r.stdout.startsWith(`usage: npm run ${name} --`), `${script} ${flag} names its npm script:\n${r.stdout}`);
        assert.match(r.stdout, /^  -h, --help +this text$/m);
        assert.equal(r.stderr, '', `${script} ${flag} did nothing else`);
      }
    });
    it(`${name}: an unknown option is a usage error naming it, with the synopsis, exit 2`, () => {
      const r = run(script, ['--no-such-option']);
      assert.equal(r.status, 2, `${script}: status ${r.status}\n${r.stderr}`);
      assert.match(r.stderr, /'--no-such-option'/);
      assert.match(r.stderr, new RegExp(`^usage: npm run ${name} --`, 'm'));
      assert.equal(r.stdout, '');
    });
  }
});

describe('parseBenchArgs', () => {
  it('without --help: the values, defaults filled in, no help key', () => {
    const r = parseBenchArgs(CMD, ['--rate', '1000', '--pin']);
    assert.ok('values' in r);
    assert.deepEqual({ ...r.values }, { reps: '5', sink: 'read', rate: '1000', pin: true });
  });

  it('--help or -h anywhere among the options: the help text, whatever else is given', () => {
    for (const args of [['--help'], ['-h'], ['--reps', '3', '--help'], ['--pin', '-h']]) {
      const r = parseBenchArgs(CMD, args);
      assert.ok('help' in r, args.join(' '));
      assert.equal(r.help, benchHelp(CMD));
    }
  });

  it('the help: synopsis with placeholders, the about text, every option a user gives with its default; internal options left out', () => {
    const help = benchHelp(CMD);
    const [synopsis, blank, about] = help.split('\n');
    assert.equal(synopsis, 'usage: npm run bench:x -- [--reps N] [--sink read|hold] [--rate PPS] [--pin] [--help]');
    assert.equal(blank, '');
    assert.equal(about, 'What x measures.');
    assert.match(help, /^ {6}--reps N +interleaved repetitions \(default 5\)$/m);
    assert.match(help, /^ {6}--rate PPS +paced instead of a flood$/m, 'no default: none shown');
    assert.match(help, /^ {6}--pin +pin the rewriter$/m, 'a boolean off by default shows none');
    // A help of several lines continues under its first.
    const read = help.split('\n').find((l) => l.includes('read: the socket is read;'))!;
    const column = read.indexOf('read:');
    assert.match(help, new RegExp(`^ {${column}}hold: it is not \\(default read\\)$`, 'm'));
    assert.doesNotMatch(help, /role|child process/);
  });

  it('a long synopsis wraps at 100 columns, under the first option', () => {
    const options = Object.fromEntries(Array.from({ length: 12 }, (_, i) => [`option-${i}`, { type: 'string', value: 'VALUE', help: 'x' } as const]));
    const lines = benchSynopsis({ command: 'npm run bench:long --', about: '', options }).split('\n');
    assert.ok(lines.length > 1);
    assert.ok(lines.every((l) => l.length <= 100), lines.join('\n'));
    const indent = 'usage: npm run bench:long --'.length;
    for (const l of lines.slice(1)) assert.equal(l.search(/\[/), indent + 1, l);
    assert.equal(lines.join(' ').match(/\[--option-\d+ VALUE\]/g)?.length, 12);
  });

  it('an unknown option, a missing value, a stray argument, a value for a boolean: usage errors naming what is wrong', () => {
    const cases: [string[], RegExp][] = [
      [['--nope'], /'--nope'/],
      [['--reps'], /--reps/],
      [['extra'], /'extra'/],
      [['--pin=yes'], /--pin/],
      [['--role', 'x', '--nope'], /'--nope'/],
    ];
    for (const [args, says] of cases) {
      assert.throws(() => parseBenchArgs(CMD, args), (err: unknown) => isL3dsrError(err, 'ERR_L3DSR_USAGE') && says.test(err.message), args.join(' '));
    }
  });

  it('internal options still parse: the script passes them to its own children', () => {
    const r = parseBenchArgs(CMD, ['--role', 'rewriter']);
    assert.ok('values' in r);
    assert.equal(r.values.role, 'rewriter');
  });
});

describe('positiveInt and positiveNumber', () => {
  it('take what they say', () => {
    assert.equal(positiveInt('reps', '5'), 5);
    assert.equal(positiveInt('reps', undefined), undefined);
    assert.equal(positiveNumber('seconds', '0.5'), 0.5);
    assert.equal(positiveNumber('seconds', '60'), 60);
  });
  it('refuse the rest, naming the option and the value', () => {
    for (const bad of ['0', '-1', '1.5', 'five', '', ' 3', '3e2']) {
      assert.throws(() => positiveInt('reps', bad), (e: unknown) => isL3dsrError(e, 'ERR_L3DSR_USAGE') && e.message === `--reps: expected a positive integer, got "${bad}"`);
    }
    for (const bad of ['0', '-1', 'x', '', ' ', 'Infinity', 'NaN']) {
      assert.throws(() => positiveNumber('seconds', bad), (e: unknown) => isL3dsrError(e, 'ERR_L3DSR_USAGE') && e.message === `--seconds: expected a positive number, got "${bad}"`);
    }
  });
});

describe('bad values stop a bench before it measures anything', () => {
  const cases: [string, string[], RegExp][] = [
    ['dist/bench/pcap-rewrite.js', ['--reps', '0'], /--reps: expected a positive integer, got "0"/],
    ['dist/bench/pcap-rewrite.js', ['--payload', '1400-0'], /--payload: expected MIN-MAX bytes/],
    ['dist/bench/tun-engines.js', ['--sink', 'drop'], /--sink: expected read or hold, got "drop"/],
    ['dist/bench/tun-engines.js', ['--variants', 'readwrite,epoll'], /--variants: unknown variant "epoll"/],
    ['dist/bench/tun-engines.js', ['--seconds', 'x'], /--seconds: expected a positive number, got "x"/],
    ['dist/bench/soak.js', ['--minutes', '0'], /--minutes: expected a positive number, got "0"/],
  ];
  for (const [script, args, says] of cases) {
    it(`${script} ${args.join(' ')}`, () => {
      const r = run(script, args);
      assert.equal(r.status, 2, `status ${r.status}\n${r.stderr}`);
      assert.match(r.stderr, says);
      assert.match(r.stderr, /^usage: npm run /m);
      assert.equal(r.stdout, '');
    });
  }
});
