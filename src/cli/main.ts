// The l3dsr command line: a thin dispatcher over the subcommands.

import { readFileSync } from 'node:fs';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { EXIT, type ExitStatus } from '../errors.js';

const USAGE = `l3dsr — userspace L3DSR: restores the VIP of DSCP-marked packets

usage:
  l3dsr run [--config FILE] [--rule DSCP=VIP ...] --steer IFACE [--tun dsr0] [...]
        the daemon: steer marked packets into a TUN, rewrite, write back
  l3dsr lb --config FILE [--steer IFACE ...] [--tun lb0] [...]
        the load balancer: steer packets to its VIPs into a TUN, pick a backend (Maglev), mark and forward
  l3dsr rewrite --rule DSCP=VIP [...] [--verdicts FILE] IN.pcap OUT.pcap
        the same rewrite on a capture file, offline
  l3dsr status [--tun dsr0] [--json | --metrics]
        rules, counters and steering of a running daemon
  l3dsr check [--config PATH ...] [--rule DSCP=VIP ...] [--json]
        validate a configuration (the real server's, or a balancer's [lb] sections) and print what it loads; changes nothing
  l3dsr version
  l3dsr help [COMMAND]

"l3dsr help COMMAND" (or "l3dsr COMMAND --help") shows a command's options. See README.md.`;

const VERSION_HELP = `usage: l3dsr version   (or: l3dsr --version)

Prints the version of l3dsr.
`;

const HELP_HELP = `usage: l3dsr help [COMMAND]

Without COMMAND, lists the commands; with one, shows its options, as
"l3dsr COMMAND --help" does.
`;

type Options = ParseArgsConfig['options'];

/**
 * Each command's help text, and the flags its parser takes (so that -h is
 * help only where that parser would see a flag). A command's module is
 * loaded only when its help is asked for.
 */
const COMMAND_HELP: Record<string, { text: () => Promise<string>; options?: () => Promise<Options> }> = {
  run: { text: async () => (await import('./run.js')).RUN_HELP, options: async () => (await import('./run-options.js')).RUN_OPTIONS },
  lb: { text: async () => (await import('./lb.js')).LB_HELP, options: async () => (await import('./lb.js')).LB_OPTIONS },
  rewrite: { text: async () => (await import('./rewrite.js')).REWRITE_USAGE, options: async () => (await import('./rewrite.js')).REWRITE_OPTIONS },
  status: { text: async () => (await import('./status.js')).STATUS_HELP, options: async () => (await import('./status.js')).STATUS_OPTIONS },
  check: { text: async () => `${(await import('./check.js')).CHECK_USAGE}\n`, options: async () => (await import('./check.js')).CHECK_OPTIONS },
  version: { text: async () => VERSION_HELP },
  help: { text: async () => HELP_HELP },
};

function helpFor(command: string | undefined): (typeof COMMAND_HELP)[string] | undefined {
  return command !== undefined && Object.hasOwn(COMMAND_HELP, command) ? COMMAND_HELP[command] : undefined;
}

/** `l3dsr help COMMAND`. */
async function helpCommand(args: string[]): Promise<ExitStatus> {
  const help = helpFor(args[0] === '--help' || args[0] === '-h' ? 'help' : args[0]);
  if (!help || args.length > 1) {
    process.stderr.write(`l3dsr help: ${help ? 'give one command' : `unknown command "${args[0]}"`}\n\n${USAGE}\n`);
    return EXIT.usage;
  }
  process.stdout.write(await help.text());
  return EXIT.ok;
}

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  if (command === 'help' && rest.length > 0) return helpCommand(rest);
  const help = helpFor(command);
  if (help && asksForHelp(rest, await help.options?.() ?? {})) {
    process.stdout.write(await help.text());
    return EXIT.ok;
  }
  switch (command) {
    case 'run': return (await import('./run.js')).runCommand(rest);
    case 'lb': return (await import('./lb.js')).lbCommand(rest);
    case 'rewrite': return (await import('./rewrite.js')).rewriteCommand(rest);
    case 'status': return (await import('./status.js')).statusCommand(rest);
    case 'check': return (await import('./check.js')).checkCommand(rest);
    case 'version':
    case '--version': {
      const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string };
      process.stdout.write(`l3dsr ${pkg.version}\n`);
      return EXIT.ok;
    }
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? EXIT.usage : EXIT.ok;
    default:
      process.stderr.write(`l3dsr: unknown command "${command}"\n\n${USAGE}\n`);
      return EXIT.usage;
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
    // Not an L3dsrError (each command prints those itself): a bug, with its stack.
    process.stderr.write(`l3dsr: ${err.stack ?? err.message}\n`);
    process.exitCode = EXIT.failure;
  },
);
