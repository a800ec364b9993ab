// One TUN queue, in its own worker thread: its own WASM core, its own
// queue of the TUN device, one core call per batch the addon reads.

import { parentPort, workerData } from 'node:worker_threads';
import { createRewriter } from '../core/rewriter.js';
import { TunDevice, VNET_HEADER_BYTES, type TunError } from '../tun/device.js';
import type { FromWorker, ToWorker, WorkerSetup } from './messages.js';
import type { QueueSnapshot } from './snapshot.js';

const setup = workerData as WorkerSetup;
const port = parentPort!;
const post = (m: FromWorker) => port.postMessage(m);

const openTun = (offload: boolean) => TunDevice.open({
  name: setup.tun, multiQueue: setup.multiQueue, engine: setup.engine, offload, log: (line) => post({ type: 'log', line }),
});
let dev: TunDevice;
let offloadNote: string | undefined;
try {
  try {
    dev = openTun(setup.offload !== 'no');
  } catch (err) {
    // auto on a TUN without IFF_VNET_HDR: run without. (A real error comes back from the second try.)
    const e = err as TunError;
    if (setup.offload !== 'auto' || e.code !== 'EINVAL' || !/TUNSETIFF|TUNSETVNETHDRSZ/.test(e.syscall ?? '')) throw err;
    dev = openTun(false);
    offloadNote = `IFF_VNET_HDR refused: ${e.message}`;
  }
} catch (err) {
  const e = err as TunError;
  post({ type: 'failed', code: e.code ?? 'ERR_L3DSR_QUEUE', message: `opening TUN ${setup.tun}: ${e.message}` });
  process.exit(1);
}
// Without segmentation the header stays (it belongs to the device, and
// costs 10 bytes a packet); `yes` asks for the super-packets themselves.
const granted = dev.offloads ?? [];
if (dev.offloads !== null && !(granted.includes('tso4') && granted.includes('tso6'))) {
  offloadNote = `the kernel granted ${granted.join(' ') || 'no offloads'} on TUN ${setup.tun}, not TSO4 and TSO6`;
  if (setup.offload === 'yes') {
    dev.close();
    post({ type: 'failed', code: 'EOPNOTSUPP', message: `--offload (offload = yes): ${offloadNote}; offload = auto, the default, runs without` });
    process.exit(1);
  }
}
// The core sees the virtio-net header in front of every packet, exactly as the TUN delivers it.
const rw = await createRewriter({
  rules: setup.rules, slotSize: setup.slotSize, slotCount: setup.slotCount, vnetHeaderBytes: dev.vnetHeaderBytes === 0 ? 0 : VNET_HEADER_BYTES,
});
dev.onError = (err) => post({ type: 'failed', code: err.code, message: `TUN ${setup.tun} queue ${setup.queue}: ${err.message}` });
dev.attach(rw.memory, {
  slotBase: rw.core.slotsBase,
  slotSize: rw.slotSize,
  slotCount: rw.slotCount,
  slotsOffset: rw.core.slotIndexesOffset,
  lengthsOffset: rw.core.lengthsOffset,
  batchMax: setup.batchMax,
}, (n) => rw.runBatch(n));

function snapshot(): QueueSnapshot {
  const c = rw.counters();
  return {
    queue: setup.queue,
    mode: dev.mode,
    detail: dev.detail,
    offloads: dev.offloads ? [...dev.offloads] : null,
    counters: { verdicts: c.verdicts, reasons: c.reasons, rules: c.rules.map((r) => ({ packets: r.packets, bytes: r.bytes })) },
    tun: dev.stats(),
  };
}

port.on('message', (m: ToWorker) => {
  try {
    switch (m.type) {
      case 'rules':
        // Already validated by the main thread; setRules validates again and stays atomic.
        rw.setRules(m.rules);
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
  offloads: dev.offloads ? [...dev.offloads] : null, offloadNote,
});
