// The l3dsr command line: a thin dispatcher over the subcommands.

import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';

const USAGE = `l3dsr — userspace L3DSR: restores the VIP of DSCP-marked packets

usage:
  l3dsr run [--config FILE] [--rule DSCP=VIP ...] --steer IFACE [--tun dsr0] [...]
        the daemon: steer marked packets into a TUN, rewrite, write back
  l3dsr rewrite --rule DSCP=VIP [...] [--verdicts FILE] IN.pcap OUT.pcap
        the same rewrite on a capture file, offline
  l3dsr status [--tun dsr0] [--json | --metrics]
        rules, counters and steering of a running daemon
  l3dsr check [--config PATH ...] [--rule DSCP=VIP ...] [--json]
        validate a configuration and print what run would load; changes nothing
  l3dsr version

"l3dsr COMMAND --help" shows a command's options. See README.md.`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  const mod = { run: '../daemon/options.js', rewrite: './rewrite.js' }[command as 'run' | 'rewrite'];
  if (mod) {
    type Options = ParseArgsConfig['options'];
    const m = await import(mod) as { RUN_USAGE?: string; REWRITE_USAGE?: string; RUN_OPTIONS?: Options; REWRITE_OPTIONS?: Options };
    if (asksForHelp(rest, m.RUN_OPTIONS ?? m.REWRITE_OPTIONS)) {
      process.stdout.write(`${m.RUN_USAGE ?? m.REWRITE_USAGE ?? USAGE}\n`);
      return 0;
    }
  }
  switch (command) {
    case 'run': return (await import('./run.js')).runCommand(rest);
    case 'rewrite': return (await import('./rewrite.js')).rewriteCommand(rest);
    case 'status': return (await import('./status.js')).statusCommand(rest);
    case 'check': return (await import('./check.js')).checkCommand(rest);
    case 'version':
    case '--version': {
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
      process.stdout.write(`l3dsr ${pkg.version}\n`);
      return 0;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`l3dsr: unknown command "${command}"\n\n${USAGE}\n`);
      return 2;
  }
}

/** Whether -h/--help is a flag as the command's own parser reads `args`: not an option's value, not after "--". */
function asksForHelp(args: string[], options: ParseArgsConfig['options']): boolean {
  const help = { help: { type: 'boolean', short: 'h' } } as const;
  const { tokens } = parseArgs({ args, options: { ...options, ...help }, strict: false, allowPositionals: true, tokens: true });
  return tokens.some((t) => t.kind === 'option' && t.name === 'help');
}

main(process.argv.slice(2)).then(
  (code) => { process.exitCode = code; },
  (err: Error) => {
    process.stderr.write(`l3dsr: ${err.stack ?? err.message}\n`);
    process.exitCode = 1;
  },
);
