// Puts the VIPs on the loopback interface so that the kernel delivers the
// rewritten packets locally, and takes away only the ones it added: an
// address that was there before us (configured by hand, or by another tool)
// stays when we stop.
import ipaddr from 'ipaddr.js';
import type { Family } from '../core/types.js';
import { commandLine, ip, ipJson, type Where } from '../system/index.js';

export interface LoopbackAddress {
  family: Family;
  address: string;
}

export interface LoopbackOptions {
  netns?: string;
  /**
   * Records `added` (the daemon writes its state file). Called before each
   * address is added, with it already in `added`, and again if adding it
   * fails: a process killed right after `ip addr add` has recorded the VIP,
   * so the run that takes over removes it.
   */
  recordAdded?: () => Promise<void>;
}

const LO = 'lo';
const HOST_LENGTH: Record<Family, number> = { 4: 32, 6: 128 };

interface IpAddrJson {
  addr_info?: Array<{ family?: string; local?: string; prefixlen?: number }>;
}

/** One text per address, so that 2001:DB8::1 and 2001:db8:0::1 compare equal. */
export const normalised = (address: string): string => ipaddr.parse(address).toNormalizedString();

/**
 * 127.0.0.0/8 and ::1 belong to lo itself (the kernel delivers all of
 * 127.0.0.0/8 locally anyway): never added, never taken over, never removed.
 */
export const isLoopbackAddress = (address: string): boolean => ipaddr.parse(address).range() === 'loopback';

export class LoopbackVips {
  readonly #where: Where;
  readonly #recordAdded: LoopbackOptions['recordAdded'];
  /** Addresses we added, in the form we added them. */
  readonly #added: LoopbackAddress[] = [];

  constructor(options: LoopbackOptions = {}) {
    this.#where = options.netns === undefined ? {} : { netns: options.netns };
    this.#recordAdded = options.recordAdded;
  }

  /** Addresses this instance added and will remove. */
  get added(): readonly LoopbackAddress[] {
    return this.#added;
  }

  /** Adds each address not already on lo (IPv6 without DAD); resolves with the commands. */
  async add(addresses: readonly LoopbackAddress[]): Promise<string[][]> {
    const present = await this.present();
    const commands: string[][] = [];
    for (const a of addresses) {
      const key = normalised(a.address);
      if (present.has(key) || isLoopbackAddress(a.address)) continue;
      present.add(key);
      const args = [`-${a.family}`, 'addr', 'add', `${a.address}/${HOST_LENGTH[a.family]}`, 'dev', LO, ...(a.family === 6 ? ['nodad'] : [])];
      commands.push(commandLine('ip', args, this.#where));
      // Ours already if someone took it off lo and a reload put it back: one entry, or remove() deletes it twice and stops.
      const claimed = !this.#added.some((x) => normalised(x.address) === key);
      if (claimed) await this.#claim(a);
      try {
        await ip(args, this.#where);
      } catch (err) {
        if (claimed) {
          this.#added.splice(this.#added.indexOf(a), 1);
          // The add's own error is the one to report.
          await this.#recordAdded?.().catch(() => {});
        }
        throw err;
      }
    }
    return commands;
  }

  /** Counts `a` as ours and records that before it is added: recorded after, a kill in between would lose it. */
  async #claim(a: LoopbackAddress): Promise<void> {
    this.#added.push(a);
    try {
      await this.#recordAdded?.();
    } catch (err) {
      this.#added.splice(this.#added.indexOf(a), 1);
      throw err;
    }
  }

  /**
   * Takes over addresses an earlier run that died had added (from its state
   * file): those still on lo will be removed like our own.
   */
  async adopt(addresses: readonly LoopbackAddress[]): Promise<void> {
    const present = await this.present();
    const ours = new Set(this.#added.map((a) => normalised(a.address)));
    for (const a of addresses) {
      const key = normalised(a.address);
      if (present.has(key) && !ours.has(key) && !isLoopbackAddress(a.address)) {
        this.#added.push(a);
        ours.add(key);
      }
    }
  }

  /** Removes the addresses we added that are not in `keep` (a reload dropped their rules). */
  async retain(keep: readonly LoopbackAddress[]): Promise<string[][]> {
    const wanted = new Set(keep.map((a) => normalised(a.address)));
    const gone = this.#added.filter((a) => !wanted.has(normalised(a.address)));
    return this.#removeSome(gone);
  }

  /** Removes what add() added (if still there). */
  async remove(): Promise<string[][]> {
    return this.#removeSome([...this.#added]);
  }

  async #removeSome(which: readonly LoopbackAddress[]): Promise<string[][]> {
    const present = await this.present();
    const commands: string[][] = [];
    for (const a of which) {
      if (present.has(normalised(a.address))) {
        const args = [`-${a.family}`, 'addr', 'del', `${a.address}/${HOST_LENGTH[a.family]}`, 'dev', LO];
        commands.push(commandLine('ip', args, this.#where));
        await ip(args, this.#where);
      }
      this.#added.splice(this.#added.indexOf(a), 1);
    }
    return commands;
  }

  /** The addresses on lo now, normalised(). */
  async present(): Promise<Set<string>> {
    const links = await ipJson<IpAddrJson[]>(['addr', 'show', 'dev', LO], this.#where);
    return new Set(links.flatMap((l) => l.addr_info ?? []).flatMap((i) => (i.local === undefined ? [] : [normalised(i.local)])));
  }
}
