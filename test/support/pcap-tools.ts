// Running the capture tools the tests compare against (tshark, editcap,
// tcpdump, capinfos) and reading their view of a file.
import { spawnSync } from 'node:child_process';
import { convertFraction } from '../../src/pcap/timestamp.js';

export interface ToolResult {
  status: number | null;
  stdout: string;
  /** stderr without the Wireshark tools' "running as root" notice. */
  stderr: string;
}

const ROOT_NOTICE = /^Running as user "root" and group "root"\. This could be dangerous\.\n?/m;

export function runTool(cmd: string, args: readonly string[]): ToolResult {
  const r = spawnSync(cmd, args, { encoding: 'utf8', maxBuffer: 1 << 30 });
  if (r.error) throw new Error(`cannot run ${cmd} (is it installed? scripts/ensure.mjs installs it): ${r.error.message}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr.replace(ROOT_NOTICE, '').trim() };
}

/** Runs a tool that must succeed; throws with its stderr otherwise. */
export function mustRun(cmd: string, args: readonly string[]): string {
  const r = runTool(cmd, args);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export interface TsharkFrame {
  /** frame.time_epoch, seconds with 9 decimals. */
  epoch: string;
  capLen: number;
  len: number;
  protocols: string;
  interfaceId: number | undefined;
  /** The captured bytes, hex. */
  hex: string;
}

interface JsonFrame {
  _source: { layers: { frame_raw: [string, ...unknown[]]; frame: Record<string, string> } };
}

/** Every frame of a file as tshark reads it; also asserts tshark had nothing to complain about. */
export function tsharkFrames(path: string, extraArgs: readonly string[] = []): TsharkFrame[] {
  const r = runTool('tshark', ['-r', path, '-T', 'json', '-x', '-j', 'frame', ...extraArgs]);
  if (r.status !== 0 || r.stderr !== '') throw new Error(`tshark -r ${path}: exit ${r.status}, stderr: ${r.stderr}`);
  const frames = JSON.parse(r.stdout) as JsonFrame[];
  return frames.map(({ _source: { layers } }) => ({
    epoch: layers.frame['frame.time_epoch'],
    capLen: Number(layers.frame['frame.cap_len']),
    len: Number(layers.frame['frame.len']),
    protocols: layers.frame['frame.protocols'],
    interfaceId: layers.frame['frame.interface_id'] === undefined ? undefined : Number(layers.frame['frame.interface_id']),
    hex: layers.frame_raw[0],
  }));
}

/** A record's timestamp as tshark prints frame.time_epoch (decimal units only). */
export function epochText(r: { tsSec: number; tsFrac: number; tsResolution: number }): string {
  return `${r.tsSec}.${String(convertFraction(r.tsFrac, r.tsResolution, 1e9)).padStart(9, '0')}`;
}

export function toHex(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('hex');
}
