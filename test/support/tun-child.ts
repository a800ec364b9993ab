// Child-process fixture for tun.test.ts: floods a TUN it attached, closes
// the device while packets are still arriving (inside or outside the batch
// callback), and then simply returns; or (`unref`) attaches, unrefs the
// device and returns without closing it. The test checks that this process
// exits on its own (no handle left behind) and what it reports.
//
//   node tun-child.js io_uring|readwrite DEVICE inside|outside|unref
import dgram from 'node:dgram';
import { TunDevice } from '../../src/tun/device.js';
import { BatchMemory, REMOTE_ADDRESS, LOCAL_ADDRESS, answerInPlace, parseUdp, sh } from './tun-lab.js';

const FLOOD_BURST = 64;
const FLOOD_TOTAL = 1280;
const CLOSE_OUTSIDE_AFTER = 640;
const CLOSE_INSIDE_AT_BATCH = 3;

function linkExists(name: string): boolean {
  try {
    sh('ip', 'link', 'show', name);
    return true;
  } catch {
    return false;
  }
}

type Where = 'inside' | 'outside' | 'unref';

function unrefAndLeave(engine: 'io_uring' | 'readwrite', name: string): void {
  const dev = TunDevice.open({ name, engine, log: () => {} });
  const mem = new BatchMemory(8);
  dev.attach(mem.memory, mem.layout, () => {});
  dev.unref();
  process.stdout.write(JSON.stringify({ mode: dev.mode, closed: dev.closed }));
}

function run(engine: 'io_uring' | 'readwrite', name: string, where: Where): void {
  if (where === 'unref') return unrefAndLeave(engine, name);
  const dev = TunDevice.open({ name, engine, log: () => {} });
  sh('ip', 'link', 'set', name, 'up');
  sh('ip', 'route', 'add', `${REMOTE_ADDRESS}/32`, 'dev', name);
  const mem = new BatchMemory(8, 16);
  let batches = 0;
  let callbacksAfterClose = 0;
  let closedAt = -1;
  dev.attach(mem.memory, mem.layout, (n) => {
    if (dev.closed) callbacksAfterClose++;
    batches++;
    for (let i = 0; i < n; i++) {
      const p = mem.packet(i);
      const d = parseUdp(p);
      if (!d || !answerInPlace(p, d)) mem.lengths[i] = 0;
    }
    if (where === 'inside' && batches === CLOSE_INSIDE_AT_BATCH) {
      closedAt = batches;
      dev.close();
    }
  });

  const sock = dgram.createSocket('udp4');
  // Once the device is closed it is gone, and so is the route: sends fail.
  sock.on('error', () => {});
  sock.bind(0, LOCAL_ADDRESS, () => {
    let sent = 0;
    const flood = () => {
      for (let i = 0; i < FLOOD_BURST; i++) sock.send(`flood ${sent++}`, 9000, REMOTE_ADDRESS);
      if (where === 'outside' && sent === CLOSE_OUTSIDE_AFTER) {
        closedAt = batches;
        dev.close();
      }
      if (sent < FLOOD_TOTAL) {
        setImmediate(flood);
        return;
      }
      sock.close();
      const report = { closed: dev.closed, batches, closedAt, callbacksAfterClose, stats: dev.stats(), linkGone: !linkExists(name) };
      process.stdout.write(JSON.stringify(report));
    };
    flood();
  });
}

// `node --test dist/test/` also runs this file as if it were a test file:
// without the fixture's arguments it does nothing.
const [engine, name, where] = process.argv.slice(2);
if ((engine === 'io_uring' || engine === 'readwrite') && name && ['inside', 'outside', 'unref'].includes(where)) run(engine, name, where as Where);
