// The soak under faults, as long as you like (test/soak.test.ts runs a
// minute of it on every push; test/support/soak.ts says what it does and
// checks). Prints the faults as they happen and the numbers the README's
// Reliability section quotes; exits 1 if anything went against the rules.
//
//   npm run soak -- [options]      (--help lists them)
//
// Needs root and a C compiler (labtool). L3DSR_SOAK_SEED=N works as --seed.
import { destroyLabsOnExit } from '../tools/lab/index.js';
import { requireLabRoot } from '../test/support/daemon.js';
import { formatReport, runSoak, soakSeed } from '../test/support/soak.js';
import { benchArgs, positiveInt, positiveNumber } from './support/args.js';

const { values, minutes, rate, minRounds } = benchArgs({
  command: 'npm run soak --',
  about: `The soak under faults (test/support/soak.ts): the daemon under traffic while faults are
injected, for as long as asked; prints the faults as they happen and the figures of the
README's Reliability section, and exits 1 if anything went against the rules.
Needs root and a C compiler (labtool).`,
  options: {
    minutes: { type: 'string', default: '5', value: 'M', help: 'how long' },
    rate: { type: 'string', default: '3000', value: 'PPS', help: 'datagrams/s of the traffic' },
    seed: { type: 'string', value: 'N', help: 'replays the faults of an earlier run (default: random; L3DSR_SOAK_SEED=N does the same)' },
    'min-rounds': { type: 'string', default: '2', value: 'N', help: 'at least this many rounds of every fault, however long it takes' },
  },
}, (v) => ({
  values: v,
  minutes: positiveNumber('minutes', v.minutes),
  rate: positiveInt('rate', v.rate),
  minRounds: positiveInt('min-rounds', v['min-rounds']),
}));
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
