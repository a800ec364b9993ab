// Suites that build network namespaces, TUN devices, tc filters or nftables
// tables need root. As a normal user they are skipped, each with its reason;
// with L3DSR_REQUIRE_PRIVILEGED=1 (CI) they are never skipped, so a run
// that lacks the privilege fails instead of going green by skipping.
//
//   test('…', { ...privileged('builds a three-namespace lab'), timeout: 60_000 }, async () => { … });
//   describe('…', privileged('creates TUN devices'), () => { … });

export const isRoot = process.getuid?.() === 0;
export const privilegeRequired = process.env.L3DSR_REQUIRE_PRIVILEGED === '1';

/** Test options that skip, with `why` as the reason, when not run as root. */
export function privileged(why: string): { skip: string | false } {
  if (isRoot || privilegeRequired) return { skip: false };
  return { skip: `needs root: ${why} (run: sudo npm test)` };
}
