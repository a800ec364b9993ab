#!/usr/bin/env node
// Makes a fresh clone runnable with no step before it: installs the npm
// dependencies (which builds the WASM core, the addon and the TypeScript),
// and, as root, the Debian packages the tests and the demo drive. A normal
// user cannot install those: it is told which are missing and goes on (the
// suites that need them skip, saying so). Only Node's own modules are used
// here, since node_modules may not exist yet.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const run = (cmd, args, env = process.env) => execFileSync(cmd, args, { cwd: root, stdio: 'inherit', env });
// A normal user's PATH lacks the sbin directories where ip, tc, nft and trafgen live.
const searchPath = [process.env.PATH, '/usr/local/sbin', '/usr/sbin', '/sbin'].filter(Boolean).join(':');
const have = (cmd) => spawnSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore', env: { ...process.env, PATH: searchPath } }).status === 0;

// command on PATH -> Debian package that provides it
const debian = {
  ip: 'iproute2', tc: 'iproute2', nft: 'nftables', tshark: 'tshark', tcpdump: 'tcpdump',
  tcprewrite: 'tcpreplay', iperf3: 'iperf3', python3: 'python3', curl: 'curl', trafgen: 'netsniff-ng',
};
const missing = [...new Set(Object.entries(debian).filter(([c]) => !have(c)).map(([, p]) => p))];
if (missing.length > 0) {
  if (process.getuid?.() === 0 && have('apt-get')) {
    process.stderr.write(`ensure: installing Debian packages: ${missing.join(' ')}\n`);
    const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
    run('apt-get', ['update', '-qq'], env);
    run('apt-get', ['install', '-y', '-qq', '--no-install-recommends', ...missing], env);
  } else {
    process.stderr.write(`ensure: not installed: ${missing.join(' ')} (Debian packages that some suites and the demo drive;\n`
      + '        the suites that need them skip; `sudo npm test` installs them and runs every suite)\n');
  }
}

if (!existsSync(join(root, 'node_modules', '.package-lock.json'))) {
  process.stderr.write('ensure: installing npm dependencies (npm ci)\n');
  run('npm', ['ci']);
}
run(process.execPath, [join(root, 'scripts', 'build.mjs')]);
