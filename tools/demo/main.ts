// `npm run demo`: L3DSR with real traffic in network namespaces. Without a
// flag, the real server's half in three namespaces (real-server-chain.ts);
// with --lb, the whole chain with two `l3dsr lb` balancers behind an ECMP
// router (lb-chain.ts). Everything a demo builds is removed again, also on
// failure and on Ctrl-C. Exit 0 only if every check held.
import { parseArgs } from 'node:util';
import { LbChain } from './lb-chain.js';
import { say } from './output.js';
import { RealServerChain } from './real-server-chain.js';

const EXIT_USAGE = 2;
const EXIT_INTERRUPTED = 130;
const EXIT_TERMINATED = 143;

const USAGE = `usage: npm run demo [-- --lb]

  (no flag)   the real server's half, in three network namespaces: client → nftables
              load balancer → l3dsr run on the real server → replies straight back
  --lb        the whole chain, in the seven-namespace ECMP lab: client → router (ECMP)
              → 2 × l3dsr lb → 2 × l3dsr run → replies straight back; the spread
              against the weights, a health check taking a server out and back, and a
              balancer killed (kill -9) while long TCP connections run
  -h, --help  this text

Runs as root (sudo npm run demo). Exit status 0 only if every check held.
`;

/** What main() needs of a demo. */
interface Demo {
  /** Whether every check held. */
  run(): Promise<boolean>;
  /** Idempotent; safe to start from a signal handler while run() is still going. */
  teardown(n?: number): Promise<void>;
  /** Last resort when the process is leaving without teardown() having finished. */
  destroyNow(): void;
}

async function main(): Promise<number> {
  let values: { lb?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({ options: { lb: { type: 'boolean' }, help: { type: 'boolean', short: 'h' } }, strict: true }));
  } catch (err) {
    process.stderr.write(`npm run demo: ${(err as Error).message}\n${USAGE}`);
    return EXIT_USAGE;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  if (process.getuid?.() !== 0) {
    process.stderr.write('npm run demo must run as root: it creates network namespaces, veth links, a TUN device and tc filters.\n'
      + 'Run it as root, e.g. `sudo npm run demo`.\n');
    return 1;
  }
  const demo: Demo = values.lb ? new LbChain() : new RealServerChain();
  let signalled = false;
  const onSignal = (sig: NodeJS.Signals, status: number) => () => {
    if (signalled) {
      // A second Ctrl-C: do not wait any longer.
      demo.destroyNow();
      process.exit(status);
    }
    signalled = true;
    say(`\n${sig}: stopping`);
    demo.teardown().catch((err: Error) => process.stderr.write(`teardown: ${err.message}\n`)).finally(() => process.exit(status));
  };
  process.on('SIGINT', onSignal('SIGINT', EXIT_INTERRUPTED));
  process.on('SIGTERM', onSignal('SIGTERM', EXIT_TERMINATED));
  process.on('exit', () => demo.destroyNow());
  // After a signal the handler owns the exit: run() only has to stop making progress.
  const never = new Promise<number>(() => {});
  try {
    const ok = await demo.run();
    return signalled ? never : ok ? 0 : 1;
  } catch (err) {
    if (signalled) return never;
    process.stderr.write(`\ndemo failed: ${(err as Error).message}\n`);
    await demo.teardown().catch((e: Error) => process.stderr.write(`teardown: ${e.message}\n`));
    return 1;
  }
}

main().then((code) => process.exit(code));
