// A balancer forwards: the packets it writes back into its TUN, now for a
// backend, are received there and routed by the kernel like any others. It
// checks that forwarding is on and refuses to start otherwise, rather than
// turn it on: forwarding makes the host a router on every interface, and
// for IPv6 it also makes the kernel ignore router advertisements (accept_ra
// = 1), so a host that takes its default route from them would lose it.
// That is the operator's decision, made once in /etc/sysctl.d/.
import type { Family } from '../core/types.js';
import { readSysctl, type Where } from '../system/index.js';
import { L3dsrError } from '../errors.js';

/**
 * The sysctl that decides: IPv4 asks the device a packet arrives on (the
 * TUN; `net.ipv4.ip_forward` sets every device's), IPv6 asks `all` only.
 */
export const forwardingKey = (family: Family, tun: string): string =>
  family === 4 ? `net/ipv4/conf/${tun}/forwarding` : 'net/ipv6/conf/all/forwarding';

/** What an operator sets to turn it on. */
const SWITCH: Record<Family, string> = { 4: 'net.ipv4.ip_forward', 6: 'net.ipv6.conf.all.forwarding' };

/** Resolves when the kernel forwards every family in `families` from `tun`; throws an L3dsrError naming what to set otherwise. */
export async function requireForwarding(families: readonly Family[], tun: string, where: Where = {}): Promise<void> {
  const off: string[] = [];
  for (const family of [...new Set(families)].sort()) {
    const key = forwardingKey(family, tun);
    const value = await readSysctl(key, where).catch((err: Error) => {
      throw new L3dsrError('ERR_L3DSR_STEERING_FORWARDING', `cannot read ${key}: ${err.message}`);
    });
    if (value !== '1') off.push(`IPv${family} forwarding is off (${key} = ${value}): set ${SWITCH[family]} = 1`);
  }
  if (off.length > 0) {
    throw new L3dsrError(
      'ERR_L3DSR_STEERING_FORWARDING',
      `${off.join('; ')}. The balancer hands the packets for its backends back to the kernel to forward; ` +
        'it does not turn forwarding on itself (that makes the host a router, and an IPv6 host stops taking router advertisements): ' +
        'set it with sysctl -w, and in /etc/sysctl.d/ to keep it',
    );
  }
}
