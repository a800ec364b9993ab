// Runs the balancer's health checks (src/lb/health.ts) in the namespace it is
// started in, for the lab tests: `node health-driver.js '{"vips": [LbVip…]}'`.
// Prints one JSON line per state change ({"change": …}), {"ready": true}
// once started, and {"status": […]} for every "status" line on stdin. Logs
// on stderr.
import { createInterface } from 'node:readline';
import { HealthChecks } from '../../src/lb/health.js';
import { TcpProber } from '../../src/lb/tcp-prober.js';
import { createLogger } from '../../src/log.js';
import type { LbVip } from '../../src/lb/types.js';

const { vips } = JSON.parse(process.argv[2] ?? '{}') as { vips: LbVip[] };
const say = (o: unknown) => process.stdout.write(`${JSON.stringify(o)}\n`);
const prober = new TcpProber();
const checks = new HealthChecks(vips, { prober, logger: createLogger({ level: 'debug' }), onChange: (change) => say({ change }) });
checks.start();
say({ ready: true });
createInterface({ input: process.stdin }).on('line', (line) => {
  if (line.trim() === 'status') say({ status: checks.status(), prober: prober.counters });
}).on('close', () => {
  checks.stop();
  prober.close();
});
