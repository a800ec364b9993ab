// Loads the raw socket addon (build/Release/l3dsr_raw.node, native/raw_socket.c)
// and describes its surface: the health checks' only way to the network.
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Family } from '../core/types.js';

/** Project root: this file runs as dist/src/lb/raw-socket.js. */
const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const RAW_ADDON_PATH = join(root, 'build', 'Release', 'l3dsr_raw.node');

/** A raw socket of one family and protocol; needs CAP_NET_RAW. */
export interface RawSocket {
  /** The TOS byte (IPv4) or traffic class (IPv6) of what it sends: DSCP << 2. */
  setTrafficClass(tos: number): void;
  /** Sends `packet` (the transport header and on, checksum included); the kernel adds the IP header. */
  send(packet: Buffer, address: string): number;
  close(): void;
}

type RawSocketClass = new (family: Family, protocol: number, onPacket: (packet: Buffer, source: string) => void) => RawSocket;

let loaded: RawSocketClass | undefined;

/**
 * Opens a raw socket. `onPacket` gets every packet of `protocol` the kernel
 * delivers locally: IPv4 ones with their IP header, IPv6 ones from the
 * transport header on (what raw sockets give). Throws an Error with code
 * EPERM without CAP_NET_RAW.
 */
export function openRawSocket(family: Family, protocol: number, onPacket: (packet: Buffer, source: string) => void): RawSocket {
  loaded ??= (createRequire(import.meta.url)(RAW_ADDON_PATH) as { RawSocket: RawSocketClass }).RawSocket;
  return new loaded(family, protocol, onPacket);
}
