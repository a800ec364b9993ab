// The soak under faults, as long as you like (test/soak.test.ts runs a
// minute of it on every push; test/support/soak.ts says what it does and
// checks). Prints the faults as they happen and the numbers the README's
// Reliability section quotes; exits 1 if anything went against the rules.
//
//   npm run soak -- [--minutes 5] [--rate 3000] [--seed N] [--min-rounds 2]
//
// Needs root and a C compiler (labtool). L3DSR_SOAK_SEED=N works as --seed.
import { parseArgs } from 'node:util';
import { destroyLabsOnExit } from '../tools/lab/index.js';
import { requireLabRoot } from '../test/support/daemon.js';
import { formatReport, runSoak, soakSeed } from '../test/support/soak.js';

const { values } = parseArgs({
  options: {
    minutes: { type: 'string', default: '5' },
    rate: { type: 'string', default: '3000' },
    seed: { type: 'string' },
    'min-rounds': { type: 'string', default: '2' },
  },
});

function positive(name: string, text: string, integer = false): number {
  const n = Number(text);
  if (!Number.isFinite(n) || n <= 0 || (integer && !Number.isInteger(n))) {
    process.stderr.write(`soak: --${name} ${JSON.stringify(text)}: expected a positive ${integer ? 'integer' : 'number'}\n`);
    process.exit(2);
  }
  return n;
}

const minutes = positive('minutes', values.minutes);
const rate = positive('rate', values.rate, true);
const minRounds = positive('min-rounds', values['min-rounds'], true);
let seed: number;
try {
  seed = soakSeed(values.seed ?? process.env.L3DSR_SOAK_SEED);
} catch (err) {
  process.stderr.write(`soak: ${(err as Error).message}\n`);
  process.exit(2);
}
requireLabRoot();
destroyLabsOnExit();
console.log(`soak: seed ${seed} (--seed ${seed} replays these faults)`);
const report = await runSoak({ seconds: minutes * 60, minRounds, rate, seed, log: (line) => console.log(line) });
console.log(formatReport(report));
if (report.problems.length > 0) {
  console.log(`\nproblems:\n${report.problems.map((p) => `- ${p}`).join('\n')}\n\nthe daemons' logs:\n${report.logs}`);
  process.exitCode = 1;
}
