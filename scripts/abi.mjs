#!/usr/bin/env node
// The one definition of every constant that crosses a language boundary:
// between TypeScript and the WASM core (verdict codes, reason codes, the
// packing of a batch result, the capacity limits), between TypeScript and
// the C addon (engine and read-mode names, offload names, the TUN queue's
// counters), and the virtio-net header that the TUN, the addon and the core
// all read. It writes them for AssemblyScript (assembly/abi.generated.ts),
// TypeScript (src/core/abi.generated.ts, src/tun/abi.generated.ts) and C
// (native/abi.generated.h), so no two sides can drift apart.
//
// The outputs are not committed (.gitignore): scripts/build.mjs writes them
// before anything that reads them, and `npm pack` ships the C header with
// the addon's sources (package.json `files`: native/*.h).
import { writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

// ---- TypeScript <-> WASM core ----

const verdicts = ['passed', 'rewritten', 'malformed', 'dropped'];

// Why a packet was malformed or dropped. Each reason belongs to one verdict;
// those marked 'lb' only the balancer gives (the real server's metrics leave
// them out).
const reasons = [
  ['none', null],
  ['too-short', 'malformed'],
  ['slot-overflow', 'malformed'],
  ['bad-version', 'malformed'],
  ['ipv4-header', 'malformed'],
  ['ipv4-total-length', 'malformed'],
  ['ipv6-payload-length', 'malformed'],
  ['ipv6-extension-chain', 'malformed'],
  ['vnet-header', 'malformed'],
  ['tcp-truncated', 'dropped'],
  ['udp-truncated', 'dropped'],
  ['udplite-truncated', 'dropped'],
  ['dccp-truncated', 'dropped'],
  ['icmpv6-truncated', 'dropped'],
  ['vnet-inconsistent', 'dropped'],
  // The balancer's own (docs/lb.md#verdicts-and-reasons); appended, so the codes above stay.
  ['sctp-truncated', 'dropped', 'lb'],
  ['icmp-truncated', 'dropped', 'lb'],
  ['icmp-embedded', 'dropped', 'lb'],
  ['fragment-ambiguous', 'dropped', 'lb'],
  ['no-backend', 'dropped', 'lb'],
];

// What the balancer did with a packet's flow (docs/lb.md#connection-table) and
// which key picked its backend: the lb detail word of a batch entry (below).
const lbConnections = ['hit', 'new', 'moved'];
const lbFlows = ['5-tuple', '3-tuple'];

const limits = {
  MAX_RULES: 1024,
  // result word of a batch entry: verdict | reason << 8 | (rule index + 1) << 16;
  // for the balancer the index is its [lb] section's
  RESULT_REASON_SHIFT: 8,
  RESULT_RULE_SHIFT: 16,
  // The balancer (docs/lb.md, docs/maglev.md): [lb] sections, backends of one
  // section, the Maglev slot of a table no backend claimed, the flow hash's
  // seed, and the connection table's ways per bucket.
  MAX_LB_SECTIONS: 256,
  MAX_LB_BACKENDS: 1024,
  LB_EMPTY_SLOT: 0xffff,
  LB_FLOW_HASH_SEED: 3,
  LB_CONNECTION_WAYS: 4,
  // The longest flow key (two IPv6 addresses, ports, protocol: 37 bytes) padded
  // to whole words, as a connection-table entry holds it and lbEntryRead copies it.
  LB_KEY_BYTES: 40,
  // lb detail word of a batch entry: (backend index + 1) | connection << 16 | flow << 18,
  // connection and flow counting from 1 in lbConnections and lbFlows (0: none)
  LB_DETAIL_CONNECTION_SHIFT: 16,
  LB_DETAIL_FLOW_SHIFT: 18,
};

// ---- the virtio-net header (the kernel's ABI; the TUN, the addon and the core read it) ----

// struct virtio_net_hdr without num_buffers, as a TUN opened with
// IFF_VNET_HDR puts it before every packet (TUNSETVNETHDRSZ is set to this),
// little-endian on this kernel: field offsets in bytes.
const vnet = {
  HEADER_BYTES: 10,
  FLAGS: 0,
  GSO_TYPE: 1,
  HDR_LEN: 2,
  GSO_SIZE: 4,
  CSUM_START: 6,
  CSUM_OFFSET: 8,
  // flags: the L4 checksum field holds the pseudo-header seed (docs/semantics.md)
  F_NEEDS_CSUM: 1,
};
// The largest GSO packet a TUN hands over: 64 KiB, every device's default
// gso_max_size (more only with BIG TCP, which l3dsr does not support). With
// a segmentation offload granted, a slot must hold it behind its header.
const GSO_MAX_PACKET = 65536;
const tunLimits = { GSO_MAX_PACKET, OFFLOAD_MIN_SLOT_SIZE: GSO_MAX_PACKET + vnet.HEADER_BYTES };

// ---- TypeScript <-> the TUN addon ----

// Engine and io_uring read mode, as the options name them and `mode` reports
// the engine; `auto` (first: C's zero value) lets the addon choose.
const engines = ['auto', 'io_uring', 'readwrite'];
const readModes = ['auto', 'multishot', 'single'];

// TUNSETOFFLOAD bits by the names `offloads` reports, in the order it does
// (the bits themselves are the kernel's: native/offload.h).
const offloads = ['csum', 'tso4', 'tso6', 'tso_ecn', 'uso4', 'uso6'];

// A TUN queue's counters, as the C struct (tun_stats), `stats()` and the
// TypeScript type hold them: [C field, JavaScript key, what it counts].
// stats() also reports two arrays, written by hand on both sides:
// batchSizeLog2 and writeErrorsByCode.
const tunCounters = [
  ['packets_read', 'packetsRead', 'Packets read from the queue (with offload, a GSO super-packet is one).'],
  ['bytes_read', 'bytesRead', 'Their bytes, virtio-net headers included.'],
  ['packets_written', 'packetsWritten', 'Packets written back into the queue.'],
  ['bytes_written', 'bytesWritten', 'Their bytes.'],
  ['batches', 'batches', 'Batches handed to onBatch.'],
  ['skipped', 'skipped', 'Entries the callback set to length 0: not written.'],
  ['bad_lengths', 'badLengths', 'Lengths beyond the slot: not written.'],
  ['write_errors', 'writeErrors', 'Writes that failed.'],
  ['write_drops', 'writeDrops', 'Of those, EAGAIN/ENOBUFS: the kernel queue was full.'],
  ['read_errors', 'readErrors', 'Reads that failed.'],
  ['buffer_ring_empty', 'bufferRingEmpty', 'io_uring: a read found no free slot.'],
  ['read_rearms', 'readRearms', 'io_uring: read requests (re)submitted.'],
  ['wakeups', 'wakeups', 'Event-loop wakeups of the data path.'],
  ['callback_errors', 'callbackErrors', 'Batches dropped because onBatch threw.'],
  ['discarded_on_close', 'discardedOnClose', 'Packets read but not handed over because the device closed.'],
  ['gso_packets', 'gsoPackets', 'Reads that were GSO super-packets (only with offload).'],
  ['gso_segments', 'gsoSegments', 'The MTU-sized segments those super-packets stand for.'],
];

// ---- writers ----

const constName = (s) => s.toUpperCase().replace(/-/g, '_');
const banner = 'Generated by scripts/abi.mjs: edit that file, not this one.';
const write = (path, text) => {
  mkdirSync(dirname(join(root, path)), { recursive: true });
  writeFileSync(join(root, path), text);
};
const choices = (names) => names.map((n) => `'${n}'`).join(', ').replace(/, ([^,]*)$/, ' or $1');

function coreLines(typed) {
  const t = typed ? ': i32' : '';
  const out = [];
  verdicts.forEach((v, i) => out.push(`export const VERDICT_${constName(v)}${t} = ${i};`));
  out.push(`export const VERDICT_COUNT${t} = ${verdicts.length};`);
  reasons.forEach(([r], i) => out.push(`export const REASON_${constName(r)}${t} = ${i};`));
  out.push(`export const REASON_COUNT${t} = ${reasons.length};`);
  for (const [k, v] of Object.entries(limits)) out.push(`export const ${k}${t} = ${v};`);
  lbConnections.forEach((c, i) => out.push(`export const LB_CONNECTION_${constName(c)}${t} = ${i + 1};`));
  lbFlows.forEach((f, i) => out.push(`export const LB_FLOW_${constName(f)}${t} = ${i + 1};`));
  return out;
}

// AssemblyScript: offsets as usize (load/store immediates), the rest as u32.
const vnetAs = Object.entries(vnet).map(([k, v]) => `export const VNET_${k}: ${k === 'HEADER_BYTES' || k.startsWith('F_') ? 'u32' : 'usize'} = ${v};`);
write('assembly/abi.generated.ts', `// ${banner}\n${[...coreLines(true), ...vnetAs].join('\n')}\n`);

write('src/core/abi.generated.ts', `// ${banner}\n${[
  ...coreLines(false),
  `export const VERDICT_NAMES = ${JSON.stringify(verdicts)} as const;`,
  `export const REASON_NAMES = ${JSON.stringify(reasons.map(([r]) => r))} as const;`,
  `export const REASON_VERDICTS = ${JSON.stringify(reasons.map(([, v]) => v))} as const;`,
  `/** Reasons only the balancer gives. */`,
  `export const REASON_BALANCER_ONLY = ${JSON.stringify(reasons.map(([, , scope]) => scope === 'lb'))} as const;`,
  `/** The lb detail word's connection field, from 1 (0: none). */`,
  `export const LB_CONNECTION_NAMES = ${JSON.stringify(lbConnections)} as const;`,
  `/** The lb detail word's flow field, from 1 (0: none). */`,
  `export const LB_FLOW_NAMES = ${JSON.stringify(lbFlows)} as const;`,
].join('\n')}\n`);

write('src/tun/abi.generated.ts', `// ${banner}\n${[
  '/** struct virtio_net_hdr (without num_buffers): its size and field offsets, little-endian. */',
  ...Object.entries(vnet).map(([k, v]) => `export const VNET_${k} = ${v};`),
  ...Object.entries(tunLimits).map(([k, v]) => `export const ${k} = ${v};`),
  `export const TUN_ENGINES = ${JSON.stringify(engines)} as const;`,
  'export type TunEngine = (typeof TUN_ENGINES)[number];',
  `export const TUN_READ_MODES = ${JSON.stringify(readModes)} as const;`,
  'export type TunReadMode = (typeof TUN_READ_MODES)[number];',
  `export const OFFLOAD_NAMES = ${JSON.stringify(offloads)} as const;`,
  '/** TUNSETOFFLOAD bits by name, as the addon reports the granted ones. */',
  'export type Offload = (typeof OFFLOAD_NAMES)[number];',
  `export const TUN_COUNTERS = ${JSON.stringify(tunCounters.map(([, js]) => js))} as const;`,
  '/** The counters of a TUN queue, as numbers. */',
  'export interface TunCounters {',
  ...tunCounters.map(([, js, doc]) => `  /** ${doc} */\n  ${js}: number;`),
  '}',
].join('\n')}\n`);

const cId = (prefix, name) => `${prefix}_${name.toUpperCase()}`;
const xMacro = (name, rows) => [`#define ${name}(X) \\`, ...rows.map((r) => `  ${r} \\`), ''].join('\n');
write('native/abi.generated.h', `/* ${banner} */
#ifndef L3DSR_ABI_GENERATED_H
#define L3DSR_ABI_GENERATED_H

/* struct virtio_net_hdr without num_buffers: its size and field offsets. */
${Object.entries(vnet).map(([k, v]) => `#define VNET_${k === 'HEADER_BYTES' ? 'HDR_BYTES' : k} ${v}`).join('\n')}
/* The largest GSO packet a TUN hands over (the default gso_max_size), and a
 * slot that holds it behind its header. */
${Object.entries(tunLimits).map(([k, v]) => `#define ${k} ${v}u`).join('\n')}

/* X(enum constant, name): engines, then io_uring read modes; the first is the default (0). */
${xMacro('L3DSR_ENGINES', engines.map((e) => `X(${cId('ENGINE', e)}, "${e}")`))}
${engines.map((e) => `#define ${cId('ENGINE', e)}_NAME "${e}"`).join('\n')}
#define ENGINE_CHOICES "${choices(engines)}"
${xMacro('L3DSR_READ_MODES', readModes.map((m) => `X(${cId('READ_MODE', m)}, "${m}")`))}
#define READ_MODE_CHOICES "${choices(readModes)}"

/* X(bit, name): offloads in the order they are reported. */
${xMacro('L3DSR_OFFLOADS', offloads.map((o) => `X(${cId('OFFLOAD', o)}, "${o}")`))}
#define OFFLOAD_COUNT ${offloads.length}

/* X(field, "jsKey"): a TUN queue's counters, each a uint64_t. */
${xMacro('L3DSR_TUN_COUNTERS', tunCounters.map(([c, js, doc]) => `X(${c}, "${js}") /* ${doc} */`))}
#endif
`);
