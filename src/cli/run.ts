// `l3dsr run`: parse and validate everything, then start the daemon.

import { ConfigError, ConfigErrors } from '../config/parse.js';
import { RuleError } from '../core/rules.js';
import { runDaemon, StartError } from '../daemon/daemon.js';
import { parseRunOptions, UsageError } from '../daemon/options.js';
import { createLogger } from '../log.js';

export async function runCommand(argv: string[]): Promise<number> {
  let opts;
  try {
    opts = await parseRunOptions(argv);
  } catch (err) {
    if (err instanceof UsageError || err instanceof ConfigError || err instanceof RuleError) {
      const lines = err instanceof ConfigErrors ? err.problems.map((p) => p.message) : [err.message];
      process.stderr.write(lines.map((line) => `l3dsr run: ${line}\n`).join(''));
      return 2;
    }
    throw err;
  }
  const log = createLogger({ level: opts.logLevel, format: opts.logFormat });
  let code: number;
  try {
    code = await runDaemon(opts, log);
  } catch (err) {
    if (!(err instanceof StartError)) throw err;
    process.stderr.write(`l3dsr run: ${err.message}\n`);
    return 1;
  }
  // Everything is closed by now; do not let a stray handle keep a stopped daemon alive.
  setTimeout(() => process.exit(code), 2000).unref();
  return code;
}
