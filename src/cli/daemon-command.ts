// What `l3dsr run` and `l3dsr lb` share once each has parsed its own
// options: the logger, the daemon's life, how a failure is told, the exit.

import { ConfigErrors } from '../config/parse.js';
import { runDaemon } from '../daemon/daemon.js';
import type { DaemonCommon } from '../daemon/options.js';
import type { DaemonRole } from '../daemon/role.js';
import { exitStatusOf, isL3dsrError, type ExitStatus } from '../errors.js';
import { createLogger, type AdjustableLogger } from '../log.js';

/** Says why the command stops (every problem of a configuration on its own line) and returns the exit status; rethrows a bug. */
function failed(command: string, err: unknown): ExitStatus {
  if (!isL3dsrError(err)) throw err;
  const lines = err instanceof ConfigErrors ? err.problems.map((p) => p.message) : [err.message];
  process.stderr.write(lines.map((line) => `l3dsr ${command}: ${line}\n`).join(''));
  return exitStatusOf(err);
}

/** Parses with `parse`, then runs the daemon in the role `role` makes, until it stops. */
export async function daemonCommand<O extends DaemonCommon>(
  command: O['command'],
  argv: string[],
  parse: (argv: string[]) => Promise<O>,
  role: (opts: O, log: AdjustableLogger, record: () => Promise<void>) => DaemonRole,
): Promise<number> {
  let opts: O;
  try {
    opts = await parse(argv);
  } catch (err) {
    return failed(command, err);
  }
  const log = createLogger({ level: opts.logLevel, format: opts.logFormat });
  let code: number;
  try {
    code = await runDaemon(opts, log, (record) => role(opts, log, record));
  } catch (err) {
    return failed(command, err);
  }
  // Everything is closed by now; do not let a stray handle keep a stopped daemon alive.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}
