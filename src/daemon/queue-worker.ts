// One TUN queue, in its own worker thread: its own WASM core (the rewrite
// or the balancer, data-path.ts), its own queue of the TUN device, one core
// call per batch the addon reads.

import { parentPort, workerData } from 'node:worker_threads';
import { TunDevice, type TunError } from '../tun/device.js';
import { openDataPath } from './data-path.js';
import type { FromWorker, ToWorker, WorkerSetup } from './messages.js';
import type { QueueSnapshot } from './snapshot.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

let dev: TunDevice;
try {
  // The offload policy, its fallback and what counts as segmentation are TunDevice.open's.
  dev = TunDevice.open({
    name: setup.tun, multiQueue: setup.multiQueue, engine: setup.engine, offload: setup.offload, log: (line) => post({ type: 'log', line }),
  });
} catch (err) {
  const e = err as TunError;
  const message = e.code === 'EOPNOTSUPP' && setup.offload === 'yes'
    ? `--offload (offload = yes): ${e.message}; offload = auto, the default, runs without`
    : `opening TUN ${setup.tun}: ${e.message}`;
  post({ type: 'failed', code: e.code ?? 'ERR_L3DSR_QUEUE', message });
  process.exit(1);
}
// The core sees the virtio-net header in front of every packet, exactly as the TUN delivers it.
const path = await openDataPath(setup.path, { slotSize: setup.slotSize, slotCount: setup.slotCount, vnetHeaderBytes: dev.vnetHeaderBytes });
dev.onError = (err) => post({ type: 'failed', code: err.code, message: `TUN ${setup.tun} queue ${setup.queue}: ${err.message}` });
dev.attach(path.memory, path.batch.layout(setup.batchMax), (n) => path.run(n));

function snapshot(): QueueSnapshot {
  return {
    queue: setup.queue,
    mode: dev.mode,
    detail: dev.detail,
    offloads: dev.offloads ? [...dev.offloads] : null,
    counters: path.counters(),
    tun: dev.stats(),
  };
}

port.on('message', (m: ToWorker) => {
  try {
    switch (m.type) {
      case 'configure':
        // Already validated by the main thread; the core validates again and stays atomic.
        path.configure(m.config);
        post({ type: 'reply', id: m.id, ok: true });
        break;
      case 'snapshot':
        post({ type: 'reply', id: m.id, ok: true, snapshot: snapshot() });
        break;
      case 'stop': {
        const last = snapshot();
        dev.close();
        post({ type: 'reply', id: m.id, ok: true, snapshot: last });
        port.close();
        break;
      }
    }
  } catch (err) {
    post({ type: 'reply', id: m.id, ok: false, error: (err as Error).message });
  }
});

post({
  type: 'ready', name: dev.name, mode: dev.mode, detail: dev.detail, fallbackReason: dev.fallbackReason,
  offloads: dev.offloads ? [...dev.offloads] : null, offloadNote: dev.offloadNote ?? undefined, otherQueueOffload: dev.otherQueueOffload,
});
