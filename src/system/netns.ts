// Named network namespaces (`ip netns add`) and programs running inside them.
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
import { existsSync } from 'node:fs';
import { ip, run } from './tools.js';

export const addNamespace = (name: string): Promise<string> => ip(['netns', 'add', name]);

/** Deletes the namespace if it exists; resolves either way. */
export async function deleteNamespace(name: string): Promise<void> {
  if (!namespaceExists(name)) return;
  await ip(['netns', 'delete', name]);
}

export const namespaceExists = (name: string): boolean => existsSync(`/run/netns/${name}`);

/** Runs a program to completion inside a namespace; resolves with its stdout. */
export const execInNamespace = (netns: string, file: string, args: readonly string[], input?: string): Promise<string> =>
  run(file, args, { netns }, input);

/**
 * Starts a long-running program inside a namespace. `ip netns exec` execs the
 * program in place, so the returned child's pid is the program's and killing
 * the child kills the program.
 */
export function spawnInNamespace(netns: string, file: string, args: readonly string[], options: SpawnOptions = {}): ChildProcess {
  return spawn('ip', ['netns', 'exec', netns, file, ...args], options);
}
