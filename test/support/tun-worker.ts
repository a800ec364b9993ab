// Worker-thread fixture for tun.test.ts: opens its own TUN, answers UDP
// datagrams through the batch callback (or throws from it), and closes
// (or not) on request.
import { isMainThread, parentPort, workerData, type MessagePort } from 'node:worker_threads';
import { TunDevice } from '../../src/tun/device.js';
import { BatchMemory, answerInPlace, parseUdp } from './tun-lab.js';

interface FixtureData {
  name: string;
  engine: 'io_uring' | 'readwrite';
  throwInBatch?: boolean;
}

function run({ name, engine, throwInBatch }: FixtureData, port: MessagePort): void {
  const dev = TunDevice.open({ name, engine, log: () => {} });
  const mem = new BatchMemory(16);
  let answered = 0;
  dev.attach(mem.memory, mem.layout, (n) => {
    if (throwInBatch) throw new Error(`thrown in onBatch(${n})`);
    for (let i = 0; i < n; i++) {
      const p = mem.packet(i);
      const d = parseUdp(p);
      if (d && d.checksumsValid && answerInPlace(p, d)) answered++;
      else mem.lengths[i] = 0;
    }
  });
  dev.onError = (err) => port.postMessage({ type: 'error', code: err.code });
  port.postMessage({ type: 'opened', name: dev.name, mode: dev.mode });
  port.on('message', (msg: string) => {
    if (msg === 'close') {
      dev.close();
      port.postMessage({ type: 'closed', answered, stats: dev.stats() });
      port.close();
    }
  });
}

// `node --test dist/test/` also runs this file as if it were a test file:
// outside a worker it does nothing.
if (!isMainThread && parentPort) run(workerData as FixtureData, parentPort);
