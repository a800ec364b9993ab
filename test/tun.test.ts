// The native TUN addon against the real kernel, as root, inside a network
// namespace this file creates: packets sent by a UDP socket are routed into
// the TUN, arrive in the batch callback, are answered in place, written
// back, and delivered to the socket.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { Worker } from 'node:worker_threads';
import { fileURLToPath } from 'node:url';
import { TunDevice } from '../src/tun/device.js';
import type { TunError, TunOpenOptions } from '../src/tun/device.js';
import { TUN_COUNTERS } from '../src/tun/abi.generated.js';
import { loadAddon, type NativeTunHandle } from '../src/tun/addon.js';
import {
  BatchMemory,
  LOCAL_ADDRESS,
  Lab,
  REMOTE_ADDRESS,
  REMOTE_PREFIX,
  answerInPlace,
  buildUdp,
  delay,
  parseUdp,
  sh,
  waitFor,
} from './support/tun-lab.js';
import { privileged } from './support/privilege.js';

const SERVICE_PORT = 9000;
const quiet = { log: () => {} };
let lab: Lab;
let devCount = 0;
/** Unique per test process, at most 15 bytes. */
const devName = () => `t${process.pid % 100000}n${devCount++}`;

/** Every suite here: the file-level hooks below run even when all of them skip. */
const TUN_LAB = privileged('creates TUN devices in a network namespace');

before(() => {
  if (!TUN_LAB.skip) lab = new Lab();
});
after(() => {
  lab?.dispose();
});

const ENGINES: { label: string; options: Partial<TunOpenOptions>; mode: string; detail: RegExp }[] = [
  { label: 'readwrite', options: { engine: 'readwrite' }, mode: 'readwrite', detail: /read\(\)\/write\(\)/ },
  { label: 'io_uring, multishot read', options: { engine: 'io_uring', readMode: 'multishot' }, mode: 'io_uring', detail: /^multishot read, defer taskrun$/ },
  {
    label: 'io_uring, multishot read, no DEFER_TASKRUN',
    options: { engine: 'io_uring', readMode: 'multishot', deferTaskrun: false },
    mode: 'io_uring',
    detail: /^multishot read$/,
  },
  { label: 'io_uring, single-shot reads', options: { engine: 'io_uring', readMode: 'single' }, mode: 'io_uring', detail: /^single-shot reads x32/ },
];

// IPv4 identification + flags/fragment offset, TTL, header checksum.
const KERNEL_CHOSEN_IPV4_BYTES = [4, 5, 6, 7, 8, 10, 11];

function sameBytesExceptKernelChosen(actual: Uint8Array, expected: Uint8Array): boolean {
  if (actual.length !== expected.length) return false;
  return actual.every((b, i) => b === expected[i] || KERNEL_CHOSEN_IPV4_BYTES.includes(i));
}

interface Seen {
  seqs: number[];
  batchSizes: number[];
  others: number;
  badChecksums: number;
  mismatches: string[];
}

/** Attaches a callback that checks each datagram against what the socket
 * sent, answers it in place, and drops the sequence numbers `drop` picks. */
function attachAnswering(dev: TunDevice, mem: BatchMemory, drop: (seq: number) => boolean = () => false): Seen {
  const seen: Seen = { seqs: [], batchSizes: [], others: 0, badChecksums: 0, mismatches: [] };
  dev.attach(mem.memory, mem.layout, (n) => {
    seen.batchSizes.push(n);
    for (let i = 0; i < n; i++) {
      const p = mem.packet(i);
      const d = parseUdp(p);
      if (!d || d.dst !== REMOTE_ADDRESS) {
        seen.others++;
        mem.lengths[i] = 0;
        continue;
      }
      if (!d.checksumsValid) seen.badChecksums++;
      const text = new TextDecoder().decode(d.payload);
      const seq = Number(/^msg (\d+)$/.exec(text)?.[1] ?? -1);
      const expected = buildUdp({ src: LOCAL_ADDRESS, dst: REMOTE_ADDRESS, srcPort: d.srcPort, dstPort: SERVICE_PORT, payload: new TextEncoder().encode(`msg ${seq}`) });
      // The IPv4 fields the kernel chooses (id, flags, TTL, header checksum)
      // aside, the slot must hold exactly the datagram that was sent.
      if (seq < 0 || !sameBytesExceptKernelChosen(p, expected))
        seen.mismatches.push(`entry ${i}: ${d.src}:${d.srcPort} -> ${d.dst}:${d.dstPort} "${text}" (${p.length} bytes)`);
      seen.seqs.push(seq);
      if (drop(seq)) mem.lengths[i] = 0;
      else answerInPlace(p, d);
    }
  });
  return seen;
}

interface Client {
  sock: dgram.Socket;
  answers: Map<number, string>;
  from: Set<string>;
  send(seqs: number[], port?: number): void;
  close(): void;
}

async function client(): Promise<Client> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => sock.bind(0, LOCAL_ADDRESS, resolve));
  const answers = new Map<number, string>();
  const from = new Set<string>();
  sock.on('message', (msg, rinfo) => {
    const text = msg.toString();
    from.add(`${rinfo.address}:${rinfo.port}`);
    const seq = Number(/^MSG (\d+)$/.exec(text)?.[1] ?? -1);
    answers.set(seq, text);
  });
  return {
    sock,
    answers,
    from,
    // Sent in one tick: each send() reaches the TUN queue synchronously, so
    // the reader finds several packets waiting (batches > 1).
    send: (seqs) => seqs.forEach((s) => sock.send(`msg ${s}`, SERVICE_PORT, REMOTE_ADDRESS)),
    close: () => sock.close(),
  };
}

const range = (n: number, from = 0) => Array.from({ length: n }, (_, i) => from + i);

describe('opening', TUN_LAB, () => {
  it('opens a TUN with the name asked for, and lets the kernel pick one for ""', () => {
    const name = devName();
    const a = TunDevice.open({ name, ...quiet });
    const b = TunDevice.open({ name: '', ...quiet });
    try {
      assert.equal(a.name, name);
      assert.match(b.name, /^tun\d+$/);
      assert.ok(a.fd >= 0 && !a.closed);
      assert.equal(a.mode, null, 'the engine is chosen at attach');
      assert.ok(lab.linkExists(name));
    } finally {
      a.close();
      b.close();
    }
    assert.equal(a.fd, -1);
    assert.ok(a.closed);
    assert.equal(lab.linkExists(name), false, 'a non-persistent TUN disappears with its last fd');
  });

  it('reports errors with the errno name as code and says which call failed on which device', () => {
    // The addon itself, past TunDevice.open's name check: the kernel's refusal, reported.
    const { TunHandle } = loadAddon();
    assert.throws(
      () => new TunHandle('bad/name', false),
      (err: TunError) => err.code === 'EINVAL' && /ioctl\(TUNSETIFF\) on bad\/name/.test(err.message),
    );
    assert.throws(() => TunDevice.open({ name: 'bad/name', ...quiet }), (err: TunError) => err.code === 'EINVAL' && /refuses "\/"/.test(err.message));
    assert.throws(() => TunDevice.open({ name: 'x'.repeat(16), ...quiet }), (err: TunError) => err.code === 'ENAMETOOLONG');
    const name = devName();
    const dev = TunDevice.open({ name, ...quiet });
    try {
      assert.throws(() => TunDevice.open({ name, ...quiet }), (err: TunError) => err.code === 'EBUSY' && err.message.includes(name));
      assert.throws(
        () => TunDevice.open({ name, multiQueue: true, ...quiet }),
        (err: TunError) => err.code === 'EINVAL' && err.syscall === 'ioctl(TUNSETIFF)',
        'a single-queue device cannot get a second queue',
      );
    } finally {
      dev.close();
    }
  });

  it('never opens a TUN under a name cut short: too many UTF-8 bytes or a NUL inside are refused, by TunDevice.open and by the addon alone', () => {
    // 15 characters but 17 bytes: a copy into the kernel's 16 bytes ended at the last whole character.
    const long = `${'a'.repeat(14)}€`;
    assert.throws(() => TunDevice.open({ name: long, ...quiet }), (err: TunError) => err.code === 'ENAMETOOLONG' && /15 characters but 17 bytes in UTF-8/.test(err.message));
    assert.throws(() => TunDevice.open({ name: 'tà', ...quiet }), (err: TunError) => err.code === 'EINVAL' && /0xA0/.test(err.message));
    const { TunHandle } = loadAddon();
    const opened: NativeTunHandle[] = [];
    const open = (name: string) => () => { opened.push(new TunHandle(name, false)); };
    try {
      assert.throws(open(long), (err: TunError) => err.code === 'ENAMETOOLONG' && /17 bytes in UTF-8/.test(err.message));
      assert.throws(open('ab\0cd'), (err: TunError) => err.code === 'EINVAL' && /NUL/.test(err.message));
    } finally {
      for (const h of opened) h.close();
    }
    assert.equal(lab.linkExists('a'.repeat(14)), false, 'a TUN named after the cut');
    assert.equal(lab.linkExists('ab'), false, 'a TUN named up to the NUL');
    // Non-ASCII within 15 bytes is a valid name, and the kernel gets all of it.
    const name = `ü${devName()}`;
    const dev = TunDevice.open({ name, ...quiet });
    try {
      assert.equal(dev.name, name);
      assert.equal(lab.linkExists(name), true);
    } finally {
      dev.close();
    }
  });

  it('refuses a layout that does not fit the memory or overlaps itself', () => {
    const dev = TunDevice.open({ name: devName(), ...quiet });
    const mem = new BatchMemory(8);
    try {
      const tooMany = { ...mem.layout, slotCount: 1 << 20 };
      assert.throws(() => dev.attach(mem.memory, tooMany, () => {}), { code: 'ERR_OUT_OF_RANGE', message: /exceed the memory/ });
      const overlapping = { ...mem.layout, lengthsOffset: mem.layout.slotBase };
      assert.throws(() => dev.attach(mem.memory, overlapping, () => {}), { code: 'ERR_OUT_OF_RANGE', message: /overlap/ });
      const fewSlots = { ...mem.layout, slotCount: mem.layout.batchMax - 1 };
      assert.throws(() => dev.attach(mem.memory, fewSlots, () => {}), { code: 'ERR_OUT_OF_RANGE', message: /slotCount/ });
      assert.equal(dev.mode, null, 'a refused attach leaves the device unattached');
    } finally {
      dev.close();
    }
  });

  it('stats() reports every counter of the one table the C struct is made from, and its two arrays', () => {
    const dev = TunDevice.open({ name: devName(), ...quiet });
    try {
      const st = dev.stats();
      assert.deepEqual(Object.keys(st).sort(), [...TUN_COUNTERS, 'batchSizeLog2', 'writeErrorsByCode'].sort());
      for (const key of TUN_COUNTERS) assert.equal(st[key], 0, `${key} of a device that moved nothing`);
      assert.ok(st.batchSizeLog2.length > 0 && st.batchSizeLog2.every((n) => n === 0), `batchSizeLog2: ${st.batchSizeLog2}`);
      assert.deepEqual(st.writeErrorsByCode, {});
    } finally {
      dev.close();
    }
  });

  it('engine auto picks io_uring on this kernel and says how it runs', () => {
    const lines: string[] = [];
    const dev = TunDevice.open({ name: devName(), engine: 'auto', log: (l) => lines.push(l) });
    const mem = new BatchMemory(8);
    try {
      dev.attach(mem.memory, mem.layout, () => {});
      assert.equal(dev.mode, 'io_uring', `auto fell back: ${dev.fallbackReason}`);
      assert.equal(dev.fallbackReason, null);
      assert.match(dev.detail ?? '', /multishot read/, 'kernel 6.18 has IORING_OP_READ_MULTISHOT');
      assert.deepEqual(lines, [`tun ${dev.name}: engine io_uring, ${dev.detail}`]);
    } finally {
      dev.close();
    }
  });
});

type Engine = (typeof ENGINES)[number];

/**
 * Opens a TUN of `engine`, routes REMOTE_PREFIX into it and binds a
 * client; runs `body` on them and closes both, whatever happens.
 */
async function onDataPath(engine: Engine, body: (dev: TunDevice, c: Client, name: string) => Promise<void>): Promise<void> {
  const name = devName();
  const dev = TunDevice.open({ name, ...engine.options, ...quiet });
  const c = await client();
  try {
    lab.routeInto(name, REMOTE_PREFIX);
    await body(dev, c, name);
  } finally {
    c.close();
    dev.close();
  }
}

/** Datagrams 0..n-1 each arrived once, as sent, in batches of more than one but at most batchMax, and were answered from the service. */
function assertAllAnswered(seen: Seen, c: Client, n: number, batchMax: number): void {
  assert.deepEqual(seen.mismatches, []);
  assert.equal(seen.badChecksums, 0);
  assert.deepEqual([...seen.seqs].sort((a, b) => a - b), range(n));
  for (const s of range(n)) assert.equal(c.answers.get(s), `MSG ${s}`);
  assert.deepEqual([...c.from], [`${REMOTE_ADDRESS}:${SERVICE_PORT}`]);
  assert.ok(Math.max(...seen.batchSizes) > 1, `batches: ${seen.batchSizes}`);
  assert.ok(Math.max(...seen.batchSizes) <= batchMax);
}

/** The device's counters say what the callback saw: n written of those it read, its batches, no write error. */
function assertStatsAgree(dev: TunDevice, seen: Seen, n: number): void {
  const st = dev.stats();
  assert.equal(st.packetsRead, n + seen.others);
  assert.equal(st.packetsWritten, n);
  assert.equal(st.batches, seen.batchSizes.length);
  assert.equal(st.batchSizeLog2.reduce((a, b) => a + b, 0), st.batches);
  assert.equal(st.writeErrors, 0);
  assert.deepEqual(st.writeErrorsByCode, {});
}

/** Answers each datagram in place, then closes the device from inside the callback; returns how many calls came. */
function attachClosingInside(dev: TunDevice, mem: BatchMemory): { calls: number } {
  const calls = { calls: 0 };
  dev.attach(mem.memory, mem.layout, (n) => {
    calls.calls++;
    for (let i = 0; i < n; i++) {
      const d = parseUdp(mem.packet(i));
      if (d) answerInPlace(mem.packet(i), d);
    }
    dev.close();
  });
  return calls;
}

for (const engine of ENGINES) {
  describe(`data path: ${engine.label}`, TUN_LAB, () => {
    it('delivers each datagram into a slot, and writes the answer back from the slot', () => onDataPath(engine, async (dev, c) => {
      const mem = new BatchMemory(8, 24);
      const seen = attachAnswering(dev, mem);
      assert.equal(dev.mode, engine.mode);
      assert.match(dev.detail ?? '', engine.detail);
      const N = 40;
      c.send(range(N));
      await waitFor(() => c.answers.size === N, `${N} answers (got ${c.answers.size})`);
      assertAllAnswered(seen, c, N, mem.layout.batchMax);
      assertStatsAgree(dev, seen, N);
    }));

    it('does not write entries whose length the callback set to 0', () => onDataPath(engine, async (dev, c, name) => {
      const odd = (s: number) => s % 2 === 1 && s < 1000;
      const seen = attachAnswering(dev, new BatchMemory(8, 24), odd);
      const rxBefore = lab.rxPackets(name);
      c.send(range(20));
      // Writes leave in order on one queue: once this marker's answer is
      // back, every earlier write has been delivered or never happened.
      c.send([1000]);
      await waitFor(() => c.answers.has(1000), 'the marker answer');

      assert.deepEqual([...c.answers.keys()].sort((a, b) => a - b), [...range(10).map((i) => 2 * i), 1000]);
      const st = dev.stats();
      assert.equal(st.skipped, 10 + seen.others);
      assert.equal(st.packetsWritten, 11);
      assert.equal(lab.rxPackets(name) - rxBefore, 11, 'the kernel received exactly the written packets');
    }));

    it('closes from inside the callback: that batch is not written and no callback follows', () => onDataPath(engine, async (dev, c, name) => {
      const seen = attachClosingInside(dev, new BatchMemory(4, 8));
      c.send(range(12));
      await waitFor(() => seen.calls > 0, 'the first batch');
      await delay(50);
      assert.equal(seen.calls, 1);
      assert.ok(dev.closed);
      assert.equal(dev.stats().packetsWritten, 0);
      assert.equal(c.answers.size, 0);
      assert.equal(lab.linkExists(name), false);
      dev.close(); // idempotent
    }));

    it('reports a deleted device through onError with the errno name, once, and stops polling', async () => {
      let opened: TunDevice | undefined;
      await onDataPath(engine, async (dev, _c, name) => {
        opened = dev;
        const errors: TunError[] = [];
        attachAnswering(dev, new BatchMemory(8));
        dev.onError = (err) => errors.push(err);
        sh('ip', 'link', 'del', name);
        await waitFor(() => errors.length > 0, 'onError after ip link del');
        assert.equal(errors[0].code, 'EBADFD', errors[0].message);
        assert.match(errors[0].message, new RegExp(`on ${name} failed`));
        const wakeups = dev.stats().wakeups;
        await delay(100);
        assert.equal(errors.length, 1);
        assert.equal(dev.stats().wakeups, wakeups, 'no more wakeups after the error (no spinning)');
        assert.equal(dev.stats().readErrors, 1);
      });
      assert.ok(opened?.closed);
    });
  });
}

describe('multi-queue', TUN_LAB, () => {
  it('runs two queues of one device at once; the kernel spreads flows over both', async () => {
    const name = devName();
    const engines = ['io_uring', 'readwrite'] as const;
    const queues = engines.map((engine) => TunDevice.open({ name, multiQueue: true, engine, ...quiet }));
    const mems = queues.map(() => new BatchMemory(16, 32));
    const clients: Client[] = [];
    try {
      lab.routeInto(name, REMOTE_PREFIX);
      const seen = queues.map((q, i) => attachAnswering(q, mems[i]));
      assert.deepEqual(queues.map((q) => q.mode), [...engines]);
      // 32 flows (one socket each): the queue is picked by flow hash, and
      // answers written on a queue pin the flow to it.
      for (let f = 0; f < 32; f++) clients.push(await client());
      clients.forEach((c, f) => c.send(range(4, f * 100)));
      await waitFor(() => clients.every((c) => c.answers.size === 4), 'answers on every flow');
      const perQueue = seen.map((s) => s.seqs.length);
      assert.equal(perQueue[0] + perQueue[1], 128);
      assert.ok(perQueue.every((n) => n > 0), `both queues read packets: ${perQueue}`);
      assert.deepEqual(queues.map((q) => q.stats().packetsWritten), perQueue);
    } finally {
      clients.forEach((c) => c.close());
      queues.forEach((q) => q.close());
    }
  });
});

/**
 * Runs a child script of this directory (in this namespace: children
 * inherit it); a crash shows as a signal, and SIGKILL after `killAfterMs`
 * means it hung, which the callers report as "did not exit".
 */
async function runScript(script: string, args: string[], nodeFlags: string[] = [], killAfterMs = 20000) {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const child = spawn(process.execPath, [...nodeFlags, path, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  const killer = setTimeout(() => child.kill('SIGKILL'), killAfterMs);
  const [code, signal] = await new Promise<[number | null, string | null]>((r) => child.on('exit', (c, s) => r([c, s])));
  clearTimeout(killer);
  return { code, signal, out, err };
}

const runChild = (engine: string, name: string, where: string) => runScript('./support/tun-child.js', [engine, name, where]);
const runMemoryChild = (engine: string, name: string, mode: string) => runScript('./support/tun-memory-child.js', [engine, name, mode], ['--expose-gc'], 30000);

describe('memory the data path writes into', TUN_LAB, () => {
  for (const engine of ['io_uring', 'readwrite'] as const) {
    it(`${engine}: a plain ArrayBuffer, which JavaScript can transfer away while the kernel writes into it, is refused at attach`, async () => {
      const { code, signal, out, err } = await runMemoryChild(engine, devName(), 'arraybuffer');
      assert.equal(signal, null, `the child crashed: ${err}`);
      assert.equal(code, 0, err);
      const r = JSON.parse(out);
      assert.equal(r.refused?.code, 'ERR_INVALID_ARG_TYPE', `attach took the ArrayBuffer; after it was transferred: ${out}`);
      assert.match(r.refused.message, /must be a WebAssembly\.Memory, not an ArrayBuffer/);
    });

    it(`${engine}: a WebAssembly.Memory that grows (outside and inside onBatch) keeps the data path going on the new buffer`, async () => {
      const { code, signal, out, err } = await runMemoryChild(engine, devName(), 'grow');
      assert.equal(signal, null, `the child crashed: ${err}`);
      assert.equal(code, 0, err);
      const r = JSON.parse(out);
      assert.equal(r.mode, engine);
      assert.equal(r.error, null);
      assert.equal(r.answers, 30, out);
      assert.equal(r.grownInside, 1);
      assert.equal(r.firstDetached, true, 'grow() detached the buffer attach() was given');
      assert.notEqual(r.transferred, 'detached', 'JavaScript cannot transfer a WebAssembly.Memory\'s buffer away');
    });
  }
});

describe('lifetime', TUN_LAB, () => {
  for (const engine of ['io_uring', 'readwrite'] as const) {
    for (const where of ['inside', 'outside'] as const) {
      it(`${engine}: a process that closes while packets arrive (close ${where} the callback) exits on its own`, async () => {
        const name = devName();
        const { code, signal, out, err } = await runChild(engine, name, where);
        assert.equal(signal, null, `child did not exit on its own (a handle kept its loop alive?): ${err}`);
        assert.equal(code, 0, err);
        const r = JSON.parse(out);
        assert.equal(r.closed, true);
        assert.equal(r.callbacksAfterClose, 0);
        assert.ok(r.closedAt >= 1, 'closed while the data path was running');
        assert.equal(r.linkGone, true, 'the fd was closed: the device is gone');
        assert.ok(r.stats.packetsRead > 0);
      });
    }
  }

  for (const engine of ['io_uring', 'readwrite'] as const) {
    it(`${engine}: an unref()'d device does not keep the process alive, and is released at exit`, async () => {
      const name = devName();
      const { code, signal, out, err } = await runChild(engine, name, 'unref');
      assert.equal(signal, null, `child did not exit on its own: ${err}`);
      assert.equal(code, 0, err);
      assert.deepEqual(JSON.parse(out), { mode: engine, closed: false });
      assert.equal(lab.linkExists(name), false);
    });
  }

  it('loads the addon in two worker threads at once, each with its own device', async () => {
    const script = new URL('./support/tun-worker.js', import.meta.url);
    const names = [devName(), devName()];
    const prefixes = ['203.0.113.0/25', '203.0.113.128/25'];
    const targets = ['203.0.113.7', '203.0.113.200'];
    const workers = names.map((name, i) => new Worker(script, { workerData: { name, engine: i === 0 ? 'io_uring' : 'readwrite' } }));
    const messages = workers.map((w) => {
      const queue: any[] = [];
      w.on('message', (m) => queue.push(m));
      w.on('error', (e) => queue.push({ type: 'error', message: String(e) }));
      return queue;
    });
    const exits = workers.map((w) => new Promise<number>((r) => w.on('exit', r)));
    const sock = dgram.createSocket('udp4');
    try {
      await waitFor(() => messages.every((q) => q.some((m) => m.type === 'opened' || m.type === 'error')), 'workers opening their devices');
      assert.deepEqual(messages.map((q) => q[0]), [
        { type: 'opened', name: names[0], mode: 'io_uring' },
        { type: 'opened', name: names[1], mode: 'readwrite' },
      ]);
      names.forEach((n, i) => lab.routeInto(n, prefixes[i]));
      await new Promise<void>((r) => sock.bind(0, LOCAL_ADDRESS, r));
      const answers: string[] = [];
      sock.on('message', (m, rinfo) => answers.push(`${rinfo.address} ${m}`));
      for (let i = 0; i < 10; i++) targets.forEach((t) => sock.send(`msg ${i}`, SERVICE_PORT, t));
      await waitFor(() => answers.length === 20, 'answers from both workers');
      for (const t of targets) assert.equal(answers.filter((a) => a.startsWith(`${t} MSG `)).length, 10);

      workers[0].postMessage('close');
      await waitFor(() => messages[0].some((m) => m.type === 'closed'), 'worker 0 closing');
      assert.equal(messages[0].find((m) => m.type === 'closed').answered, 10);
      assert.equal(await exits[0], 0, 'a worker whose device is closed exits by itself');
      // Worker 1 never closes its device: terminating it must run the
      // addon's cleanup (stop polling, close the fd) without crashing.
      await workers[1].terminate();
      assert.equal(await exits[1], 1);
      assert.equal(lab.linkExists(names[1]), false, 'the terminated worker\'s device was closed');
    } finally {
      sock.close();
      workers.forEach((w) => void w.terminate());
    }
  });

  for (const engine of ['io_uring', 'readwrite'] as const) {
    it(`${engine}: an exception thrown by onBatch is uncaught, and the crashed worker's device is released`, async () => {
      const name = devName();
      const worker = new Worker(new URL('./support/tun-worker.js', import.meta.url), { workerData: { name, engine, throwInBatch: true } });
      const opened = new Promise<void>((r) => worker.once('message', () => r()));
      const failed = new Promise<Error>((r) => worker.once('error', r));
      const exited = new Promise<number>((r) => worker.once('exit', r));
      const sock = dgram.createSocket('udp4');
      try {
        await opened;
        lab.routeInto(name, REMOTE_PREFIX);
        await new Promise<void>((r) => sock.bind(0, LOCAL_ADDRESS, r));
        sock.send('msg 1', SERVICE_PORT, REMOTE_ADDRESS);
        const err = await failed;
        assert.match(err.message, /^thrown in onBatch\(1\)$/);
        assert.equal(await exited, 1);
        assert.equal(lab.linkExists(name), false, 'the crashed worker\'s device was closed by the addon\'s cleanup');
      } finally {
        sock.close();
        await worker.terminate();
      }
    });
  }
});
