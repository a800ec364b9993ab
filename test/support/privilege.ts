// What some tests need that a normal user may not have: root (suites that
// build network namespaces, TUN devices, tc filters or nftables tables), and
// outside tools only root can install (tshark, tcpdump...). Without them the
// tests are skipped, each with its reason, and `npm test` (scripts/test.mjs)
// counts the skips; with L3DSR_REQUIRE_PRIVILEGED=1 (CI) they are never
// skipped, so a run that lacks the privilege or a tool fails instead of
// going green by skipping.
//
//   test('…', { ...privileged('builds a three-namespace lab'), timeout: 60_000 }, async () => { … });
//   describe('…', privileged('creates TUN devices'), () => { … });
//   test('…', needs(privileged('captures in a namespace'), tools('tcpdump')), async () => { … });
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';

export const isRoot = process.getuid?.() === 0;
export const privilegeRequired = process.env.L3DSR_REQUIRE_PRIVILEGED === '1';

export interface SkipOption {
  skip: string | false;
}

const PRIVILEGED_REASON = 'needs root: ';

/** Test options that skip, with `why` as the reason, when not run as root. */
export function privileged(why: string): SkipOption {
  if (isRoot || privilegeRequired) return { skip: false };
  return { skip: `${PRIVILEGED_REASON}${why} (run: sudo npm test)` };
}

/** Whether a skip reason is privileged()'s (scripts/test.mjs counts those apart). */
export function isPrivilegedSkip(reason: string): boolean {
  return reason.startsWith(PRIVILEGED_REASON);
}

function onPath(command: string): boolean {
  return (process.env.PATH ?? '').split(delimiter).some((dir) => {
    if (dir === '') return false;
    try {
      accessSync(join(dir, command), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Test options that skip when one of `commands` is not on the PATH, naming the missing ones. */
export function tools(...commands: string[]): SkipOption {
  const missing = commands.filter((c) => !onPath(c));
  if (missing.length === 0 || privilegeRequired) return { skip: false };
  return { skip: `needs ${missing.join(', ')}, not installed (sudo npm test installs what the tests drive)` };
}

/** The first reason to skip among several requirements. */
export function needs(...requirements: SkipOption[]): SkipOption {
  return requirements.find((r) => r.skip !== false) ?? { skip: false };
}
