// iproute2 and nftables, optionally inside a named network namespace
// (`ip netns add NAME`). `ip` and `tc` take the namespace themselves (`-n`);
// everything else goes through `ip netns exec`.
import { L3dsrError } from '../errors.js';
import { runCommand } from './command.js';

/** Where a command runs: the caller's namespace, or a named one. */
export interface Where {
  netns?: string;
}

const netnsFlag = (where: Where): string[] => (where.netns === undefined ? [] : ['-n', where.netns]);

/** The argv that runs `file args…` in `where` (used by dry runs to print it). */
export function commandLine(file: string, args: readonly string[], where: Where = {}): string[] {
  if (file === 'ip' || file === 'tc') return [file, ...netnsFlag(where), ...args];
  if (where.netns === undefined) return [file, ...args];
  return ['ip', 'netns', 'exec', where.netns, file, ...args];
}

/** Runs any program in `where`; resolves with its stdout. */
export function run(file: string, args: readonly string[], where: Where = {}, input?: string): Promise<string> {
  const [program, ...rest] = commandLine(file, args, where);
  return runCommand(program!, rest, { input });
}

export const ip = (args: readonly string[], where: Where = {}): Promise<string> => run('ip', args, where);
export const tc = (args: readonly string[], where: Where = {}): Promise<string> => run('tc', args, where);

/** `ip -j …` parsed. */
export async function ipJson<T = unknown>(args: readonly string[], where: Where = {}): Promise<T> {
  return parseJson<T>(await ip(['-j', ...args], where), 'ip', args);
}

/** `tc -j …` parsed. */
export async function tcJson<T = unknown>(args: readonly string[], where: Where = {}): Promise<T> {
  return parseJson<T>(await tc(['-j', ...args], where), 'tc', args);
}

/** `nft -f -` with a ruleset on stdin (nft 1.0.6 wants tables written over several lines). */
export const nftApply = (ruleset: string, where: Where = {}): Promise<string> => run('nft', ['-f', '-'], where, ruleset);

/** `nft …` with arguments (e.g. `list ruleset`, `delete table ip lb`). */
export const nft = (args: readonly string[], where: Where = {}): Promise<string> => run('nft', args, where);

function parseJson<T>(text: string, tool: string, args: readonly string[]): T {
  // iproute2 prints nothing at all (not `[]`) for some empty listings.
  if (text.trim() === '') return [] as T;
  try {
    return JSON.parse(text) as T;
  } catch (err) {
    throw new L3dsrError('ERR_L3DSR_COMMAND_OUTPUT', `${tool} -j ${args.join(' ')}: output is not JSON: ${(err as Error).message}`, { cause: err });
  }
}
