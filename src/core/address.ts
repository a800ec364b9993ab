// Strict address parsing: dotted-quad decimal IPv4 (no octal, no short
// forms, no host names) and IPv6 without zone ids. Anything else is refused.

import ipaddr from 'ipaddr.js';
import type { Family } from './types.js';

export interface ParsedAddress {
  family: Family;
  /** 4 or 16 bytes, network order. */
  bytes: Uint8Array;
  /** Canonical text (IPv6 compressed per RFC 5952). */
  text: string;
}

/** Parses an address, or returns a sentence saying why it is not one. */
export function parseAddress(text: string): ParsedAddress | string {
  if (text.includes('%')) return 'IPv6 zone ids are not allowed';
  if (/^[0-9.]+$/.test(text)) {
    if (!ipaddr.IPv4.isValidFourPartDecimal(text) || /(^|\.)0\d/.test(text)) {
      return 'expected a dotted-quad decimal IPv4 address such as 203.0.113.10';
    }
    const v4 = ipaddr.IPv4.parse(text);
    return { family: 4, bytes: Uint8Array.from(v4.toByteArray()), text: v4.toString() };
  }
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) {
    const v6 = ipaddr.IPv6.parse(text);
    return { family: 6, bytes: Uint8Array.from(v6.toByteArray()), text: v6.toRFC5952String() };
  }
  return 'expected an IPv4 address (203.0.113.10) or an IPv6 address (2001:db8::10)';
}

/** The canonical text of a 4- or 16-byte address in network order. */
export function addressText(bytes: Uint8Array): string {
  if (bytes.length === 4) return ipaddr.fromByteArray([...bytes]).toString();
  if (bytes.length === 16) return (ipaddr.fromByteArray([...bytes]) as ipaddr.IPv6).toRFC5952String();
  throw new RangeError(`an address is 4 or 16 bytes, got ${bytes.length}`);
}

/**
 * A host name (RFC 1123 labels), as a config file may give an IPv4 VIP. The
 * last label must start with a letter, as every top-level domain does: the
 * resolver (inet_aton) would read `0x0a` or `10.0x1.1.1` as an address, and
 * such forms are refused as addresses above.
 */
export function isHostName(text: string): boolean {
  if (text.length > 253) return false;
  const labels = text.split('.');
  return labels.every((l) => /^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/.test(l)) && /^[A-Za-z]/.test(labels[labels.length - 1]);
}

export interface ParsedPrefix extends ParsedAddress {
  length: number;
}

/** Parses `ADDRESS/LENGTH` (a bare address is a host prefix), or returns why not. */
export function parsePrefix(text: string): ParsedPrefix | string {
  const slash = text.indexOf('/');
  const addr = parseAddress(slash < 0 ? text : text.slice(0, slash));
  if (typeof addr === 'string') return addr;
  const max = addr.family === 4 ? 32 : 128;
  if (slash < 0) return { ...addr, length: max };
  const lenText = text.slice(slash + 1);
  const length = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || length > max) {
    return `expected a prefix length 0-${max} after "/", got "${lenText}"`;
  }
  // Keep only the network part, so equal prefixes compare equal.
  const bytes = addr.bytes.slice();
  for (let bit = length; bit < max; bit++) bytes[bit >> 3] &= ~(0x80 >> (bit & 7));
  const canonical = addr.family === 4
    ? ipaddr.fromByteArray([...bytes]).toString()
    : (ipaddr.fromByteArray([...bytes]) as ipaddr.IPv6).toRFC5952String();
  return { family: addr.family, bytes, text: canonical, length };
}
