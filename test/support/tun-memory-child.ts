// Child-process fixture for tun.test.ts: gives a TUN's data path memory that
// JavaScript then takes away or grows, sends datagrams through it and
// reports what happened, as one JSON line. A child, so that a crash fails
// the test instead of killing the test runner.
//
//   node --expose-gc tun-memory-child.js io_uring|readwrite DEVICE arraybuffer|grow
//
// arraybuffer: attaches a plain ArrayBuffer, transfers it away (its memory
//   is freed) and allocates buffers that may land where it was; reports
//   whether attach refused it, and whether those buffers were written into.
// grow: attaches a WebAssembly.Memory and grows it outside and inside the
//   batch callback; every datagram must still be answered.
import dgram from 'node:dgram';
import { TunDevice, type TunError } from '../../src/tun/device.js';
import type { BatchLayout } from '../../src/tun/device.js';
import { LOCAL_ADDRESS, REMOTE_ADDRESS, answerInPlace, delay, parseUdp, sh, waitFor } from './tun-lab.js';

const PORT = 9000;
/** Large enough that the allocator maps it on its own and unmaps it when freed. */
const ARRAY_BUFFER_BYTES = 8 * 1024 * 1024;
const REPLACEMENTS = 4;
const FILL = 0xee;
const WASM_PAGE = 65536;

const LAYOUT: BatchLayout = { slotsOffset: 0, lengthsOffset: 64, slotBase: 4096, slotSize: 2048, slotCount: 16, batchMax: 8 };

type Engine = 'io_uring' | 'readwrite';

function report(r: object): void {
  process.stdout.write(`${JSON.stringify(r)}\n`);
}

/** A client socket that counts the answers it gets. */
async function client(): Promise<{ sock: dgram.Socket; answers: () => number; send: (n: number) => void }> {
  const sock = dgram.createSocket('udp4');
  sock.on('error', () => {});
  await new Promise<void>((r) => sock.bind(0, LOCAL_ADDRESS, r));
  let answers = 0;
  sock.on('message', () => answers++);
  let seq = 0;
  return { sock, answers: () => answers, send: (n) => { for (let i = 0; i < n; i++) sock.send(`msg ${seq++}`, PORT, REMOTE_ADDRESS); } };
}

function open(engine: Engine, name: string): TunDevice {
  const dev = TunDevice.open({ name, engine, log: () => {} });
  sh('ip', 'link', 'set', name, 'up');
  sh('ip', 'route', 'add', `${REMOTE_ADDRESS}/32`, 'dev', name);
  return dev;
}

async function arrayBuffer(engine: Engine, name: string): Promise<void> {
  const dev = open(engine, name);
  let error: { code: string; message: string } | null = null;
  dev.onError = (err: TunError) => { error ??= { code: err.code, message: err.message }; };
  let buffer: ArrayBuffer | undefined = new ArrayBuffer(ARRAY_BUFFER_BYTES);
  try {
    // What a JavaScript caller can do whatever the types say.
    dev.attach(buffer as unknown as WebAssembly.Memory, LAYOUT, () => {});
  } catch (err) {
    const e = err as TunError;
    report({ refused: { code: e.code, message: e.message } });
    dev.close();
    return;
  }
  // The clone owns the memory now; dropped and collected, it frees it.
  structuredClone(buffer, { transfer: [buffer] });
  buffer = undefined;
  (globalThis as { gc?: () => void }).gc?.();
  const replacements = Array.from({ length: REPLACEMENTS }, () => new Uint8Array(ARRAY_BUFFER_BYTES).fill(FILL));
  const c = await client();
  c.send(20);
  await delay(300);
  const corrupted = replacements.some((b) => b.some((x) => x !== FILL));
  report({ refused: null, corrupted, error, stats: dev.stats() });
  c.sock.close();
  dev.close();
}

/** Views on the batch descriptor and a slot, made from the memory's current buffer. */
function packet(memory: WebAssembly.Memory, i: number): { bytes: Uint8Array; drop: () => void } {
  const slots = new Uint32Array(memory.buffer, LAYOUT.slotsOffset, LAYOUT.batchMax);
  const lengths = new Uint32Array(memory.buffer, LAYOUT.lengthsOffset, LAYOUT.batchMax);
  const bytes = new Uint8Array(memory.buffer, LAYOUT.slotBase + slots[i] * LAYOUT.slotSize, lengths[i]);
  return { bytes, drop: () => { lengths[i] = 0; } };
}

async function grow(engine: Engine, name: string): Promise<void> {
  const dev = open(engine, name);
  let error: { code: string; message: string } | null = null;
  dev.onError = (err: TunError) => { error ??= { code: err.code, message: err.message }; };
  const memory = new WebAssembly.Memory({ initial: Math.ceil((LAYOUT.slotBase + LAYOUT.slotCount * LAYOUT.slotSize) / WASM_PAGE) });
  const first = memory.buffer;
  let growInside = false;
  let grownInside = 0;
  dev.attach(memory, LAYOUT, (n) => {
    if (growInside) {
      memory.grow(1);
      growInside = false;
      grownInside++;
    }
    for (let i = 0; i < n; i++) {
      const p = packet(memory, i);
      const d = parseUdp(p.bytes);
      if (!d || !answerInPlace(p.bytes, d)) p.drop();
    }
  });
  // Not transferable: structuredClone either refuses or copies, and the buffer stays.
  let transferred: string;
  try {
    structuredClone(memory.buffer, { transfer: [memory.buffer] });
    transferred = memory.buffer.byteLength === first.byteLength ? 'copied' : 'detached';
  } catch (err) {
    transferred = `refused: ${(err as Error).name}`;
  }
  const c = await client();
  const step = async (what: string, expected: number): Promise<void> => {
    c.send(10);
    await waitFor(() => c.answers() === expected || error !== null, `${what}: answers`, 10_000).catch(() => {});
  };
  await step('before growing', 10);
  memory.grow(2);
  await step('after growing outside the callback', 20);
  growInside = true;
  await step('after growing inside the callback', 30);
  report({
    answers: c.answers(), error, transferred, grownInside,
    firstDetached: first.byteLength === 0, pages: memory.buffer.byteLength / WASM_PAGE, mode: dev.mode,
  });
  c.sock.close();
  dev.close();
}

// `node --test dist/test/` also runs this file as if it were a test file:
// without the fixture's arguments it does nothing.
const [engine, name, mode] = process.argv.slice(2);
if ((engine === 'io_uring' || engine === 'readwrite') && name) {
  if (mode === 'arraybuffer') await arrayBuffer(engine, name);
  else if (mode === 'grow') await grow(engine, name);
}
