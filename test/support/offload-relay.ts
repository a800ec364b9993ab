// The daemon's data path in miniature, in this process: a TUN with offload
// opened in another namespace, tc steering into it, the core with its
// virtio-net header, and an optional fault: the seed of the first few
// rewritten GSO super-packets is made wrong after the core ran. The
// offload proof uses it as its negative control, to show that a wrong seed
// does show where it looks.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { createRewriter, decodeResult, type Rewriter } from '../../src/core/rewriter.js';
import { Steering } from '../../src/steering/index.js';
import { ip } from '../../src/system/index.js';
import { OFFLOAD_MIN_SLOT_SIZE, TunDevice, VNET_HEADER_BYTES, type TunStats } from '../../src/tun/device.js';
import { VNET_F_NEEDS_CSUM, VNET_GSO, readVnet } from '../../tools/packets/vnet.js';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const NETNS_ADDON = join(root, 'build', 'Release', 'l3dsr_test_netns.node');

interface NetnsAddon {
  enter(path: string): number;
  restore(fd: number): void;
}

const SLOT_ALIGN = 64;
const BATCH = 64;

export interface RelayOptions {
  /** Namespace the TUN and the steering live in (the lab's srv). */
  netns: string;
  tun: string;
  /** Where marked packets arrive. */
  steer: string;
  rules: string[];
  /** How many rewritten super-packets get a wrong seed (one bit flipped). */
  corrupt: number;
}

export class SeedFaultRelay {
  /** Super-packets whose seed was made wrong so far. */
  corrupted = 0;

  private constructor(readonly dev: TunDevice, readonly rw: Rewriter, readonly steering: Steering) {}

  static async start(o: RelayOptions): Promise<SeedFaultRelay> {
    const netns = createRequire(import.meta.url)(NETNS_ADDON) as NetnsAddon;
    // The TUN is created in the namespace of the thread that opens it.
    const saved = netns.enter(`/run/netns/${o.netns}`);
    let dev: TunDevice;
    try {
      // `yes`: the open fails without TCP segmentation, which the proof needs.
      dev = TunDevice.open({ name: o.tun, offload: 'yes', log: () => {} });
    } finally {
      netns.restore(saved);
    }
    try {
      const rw = await createRewriter({
        rules: o.rules, vnetHeaderBytes: VNET_HEADER_BYTES, slotCount: 2 * BATCH,
        slotSize: Math.ceil(OFFLOAD_MIN_SLOT_SIZE / SLOT_ALIGN) * SLOT_ALIGN,
      });
      const where = { netns: o.netns };
      await ip(['link', 'set', 'dev', o.tun, 'addrgenmode', 'none'], where);
      await ip(['link', 'set', 'dev', o.tun, 'txqueuelen', '4096', 'up'], where);
      const steering = new Steering({ interfaces: [o.steer], tun: o.tun, netns: o.netns });
      const relay = new SeedFaultRelay(dev, rw, steering);
      dev.attach(rw.memory, rw.batch.layout(BATCH), (n) => relay.#batch(n, o.corrupt));
      await steering.install(rw.rules.map((r) => ({ family: r.family, dscp: r.dscp })));
      return relay;
    } catch (err) {
      dev.close();
      throw err;
    }
  }

  stats(): TunStats {
    return this.dev.stats();
  }

  async stop(): Promise<void> {
    try {
      await this.steering.remove();
    } finally {
      this.dev.close();
    }
  }

  #batch(n: number, corrupt: number): void {
    const { rw } = this;
    const { batch } = rw;
    rw.rewriteSlots(n);
    for (let i = 0; i < n && this.corrupted < corrupt; i++) {
      if (decodeResult(batch.result(i)).verdict !== 'rewritten') continue;
      const frame = batch.slot(batch.entrySlot(i));
      const h = readVnet(frame);
      if (h.gsoType === VNET_GSO.NONE || !(h.flags & VNET_F_NEEDS_CSUM)) continue;
      const field = VNET_HEADER_BYTES + h.csumStart + h.csumOffset;
      frame[field + 1]! ^= 1;
      this.corrupted++;
    }
  }
}
