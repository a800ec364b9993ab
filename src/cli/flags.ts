// What the commands' flags share. node:util parseArgs quietly keeps the
// last of a flag given twice, so `--tun a --tun b` would mean b: only the
// flags declared `multiple` may repeat. Two flags of which the synopsis
// offers one or the other (`[--json | --metrics]`) are refused together,
// rather than one of them being silently ignored.

import type { parseArgs, ParseArgsConfig } from 'node:util';

type Token = NonNullable<ReturnType<typeof parseArgs>['tokens']>[number];

/** Two flags that exclude each other, and why (`--a and --b WHY: give one`). */
export type ExclusiveFlags = readonly [a: string, b: string, why: string];

/** What is wrong with the flags of one command line (a repeat, or two that exclude each other), or undefined. */
export function flagsProblem(tokens: readonly Token[], options: NonNullable<ParseArgsConfig['options']>, exclusive: readonly ExclusiveFlags[] = []): string | undefined {
  const seen = new Set<string>();
  for (const t of tokens) {
    if (t.kind !== 'option') continue;
    if (seen.has(t.name) && options[t.name]?.multiple !== true) return `--${t.name} given twice: give it once`;
    seen.add(t.name);
  }
  for (const [a, b, why] of exclusive) {
    if (seen.has(a) && seen.has(b)) return `--${a} and --${b} ${why}: give one`;
  }
  return undefined;
}
