// Addresses as the packet builders need them: text to network-order bytes
// and back. Parsed with ipaddr.js directly, not with the product's strict
// parser (src/core/address.ts), so that what the tests build does not depend
// on what they test.
import ipaddr from 'ipaddr.js';

/** The 4 or 16 bytes of an IPv4 or IPv6 address; `family`, when given, must match. */
export function addressBytes(text: string, family?: 4 | 6): Uint8Array {
  const parsed = ipaddr.parse(text);
  if (family !== undefined && (family === 4) !== (parsed.kind() === 'ipv4')) throw new RangeError(`${text} is not an IPv${family} address`);
  return Uint8Array.from(parsed.toByteArray());
}

/** Dotted-quad or RFC 5952 text of 4 or 16 address bytes. */
export function addressText(bytes: Uint8Array): string {
  const a = ipaddr.fromByteArray(Array.from(bytes));
  return a.kind() === 'ipv6' ? (a as ipaddr.IPv6).toRFC5952String() : a.toString();
}

/** A MAC address as `ip link` prints it (aa:bb:cc:dd:ee:ff). */
export const macBytes = (text: string): Uint8Array => Uint8Array.from(text.split(':').map((x) => Number.parseInt(x, 16)));
