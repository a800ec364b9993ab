// Runs one external program without a shell and returns its stdout. Every
// failure becomes a CommandError that carries the full command line and the
// program's stderr, so a failed `tc filter add` says exactly what was run.
import { spawn } from 'node:child_process';
import { L3dsrError } from '../errors.js';

export interface RunOptions {
  /** Written to the program's stdin, then stdin is closed (e.g. `nft -f -`). */
  input?: string;
}

/** A program exited non-zero, was killed, or could not be started. */
export class CommandError extends L3dsrError {
  override name = 'CommandError';

  constructor(
    /** Program and arguments, exactly as run. */
    readonly argv: readonly string[],
    /** Exit status, or null when killed by a signal or never started. */
    readonly exitStatus: number | null,
    /** The program's stderr, trimmed. */
    readonly stderr: string,
    reason: string,
  ) {
    super('ERR_L3DSR_COMMAND', `${formatCommand(argv)}: ${reason}${stderr === '' ? '' : `: ${stderr}`}`);
  }
}

/** The command line as a person would type it (arguments with spaces quoted). */
export function formatCommand(argv: readonly string[]): string {
  return argv.map((a) => (a === '' || /[\s'"\\$]/.test(a) ? `'${a.replace(/'/g, `'\\''`)}'` : a)).join(' ');
}

/** Runs `file args…` and resolves with its stdout; rejects with a CommandError. */
export function runCommand(file: string, args: readonly string[], options: RunOptions = {}): Promise<string> {
  const argv = [file, ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    const stdout: Buffer[] = [];
    const stderr: Buffer[] = [];
    child.stdout.on('data', (chunk: Buffer) => stdout.push(chunk));
    child.stderr.on('data', (chunk: Buffer) => stderr.push(chunk));
    child.on('error', (err) => reject(new CommandError(argv, null, '', `cannot start: ${err.message}`)));
    child.on('close', (status, signal) => {
      const errText = Buffer.concat(stderr).toString('utf8').trim();
      if (status === 0) resolve(Buffer.concat(stdout).toString('utf8'));
      else if (signal !== null) reject(new CommandError(argv, null, errText, `killed by ${signal}`));
      else if (status !== null) reject(new CommandError(argv, status, errText, `exit status ${status}`));
    });
    // A program that exits without reading stdin makes the write fail with
    // EPIPE; its exit status is what matters, so the write error is dropped.
    child.stdin.on('error', () => {});
    child.stdin.end(options.input ?? '');
  });
}
