// How l3dsr fails: one error type, L3dsrError, whose `code` is one of the
// table below, and one table of exit statuses. A command that stops on an
// L3dsrError prints its message and exits with its code's status; anything
// else is a bug, printed with its stack. An error that carries more than a
// message (the file and line of a ConfigError, the position in a capture of
// a PcapError) is a subclass with those fields; every other failure is an
// L3dsrError with the code that says what went wrong. Errors of the system
// (an errno from fs, a TUN ioctl) keep their own code and become the `cause`
// where they are wrapped. Arguments a caller got wrong (a bug, not a
// failure) stay TypeError and RangeError, as in Node's own APIs.

/** What every l3dsr command exits with (README: Command line). */
export const EXIT = {
  ok: 0,
  /** The command could not do its work: the daemon could not start or stopped on an error, a capture is damaged, no daemon answered. */
  failure: 1,
  /** Bad usage or configuration, found before anything was touched. */
  usage: 2,
} as const;
export type ExitStatus = (typeof EXIT)[keyof typeof EXIT];

/** Every code an L3dsrError carries, and the exit status of a command that stops on it. */
export const ERROR_CODES = {
  /** A flag or argument of the command line. */
  ERR_L3DSR_USAGE: EXIT.usage,
  /** The configuration (ConfigError: file, line, field). */
  ERR_L3DSR_CONFIG: EXIT.usage,
  /** A rule (RuleError: where it came from, which field). */
  ERR_L3DSR_RULE: EXIT.usage,
  /** `l3dsr run` cannot start: a missing capability or device, an interface in the way, a live earlier run. */
  ERR_L3DSR_START: EXIT.failure,
  /** The runtime directory or a file in it (control socket) is not what it must be. */
  ERR_L3DSR_RUNTIME_DIR: EXIT.failure,
  /** A state file the daemon will not act on (StateFileError: path, field). */
  ERR_L3DSR_STATE_FILE: EXIT.failure,
  /** A queue worker: it could not open its TUN queue, its data path failed, or it is gone. */
  ERR_L3DSR_QUEUE: EXIT.failure,
  /** A listener (the metrics address) could not be opened. */
  ERR_L3DSR_LISTEN: EXIT.failure,
  /** `l3dsr status`: the daemon answered with an error. */
  ERR_L3DSR_CONTROL: EXIT.failure,
  /** A program (ip, tc, nft) failed (CommandError: its command line, status, stderr). */
  ERR_L3DSR_COMMAND: EXIT.failure,
  /** A program's output, or a file of /proc, is not what it should be. */
  ERR_L3DSR_COMMAND_OUTPUT: EXIT.failure,
  /** A sysctl key that would leave /proc/sys. */
  ERR_L3DSR_SYSCTL_KEY: EXIT.failure,
  /** Steering asked for something it cannot do (no interface, a bad priority base or class). */
  ERR_L3DSR_STEERING_CONFIG: EXIT.failure,
  /** Steering used out of order (update before install). */
  ERR_L3DSR_STEERING_STATE: EXIT.failure,
  /** Another tool's filters sit in the tc priorities steering owns. */
  ERR_L3DSR_STEERING_PRIORITY_TAKEN: EXIT.failure,
  /** The TUN to steer into does not exist. */
  ERR_L3DSR_STEERING_NO_TUN: EXIT.failure,
  /** A balancer's families are not forwarded (it hands packets back to the kernel to forward). */
  ERR_L3DSR_STEERING_FORWARDING: EXIT.failure,
  /** A capture file is damaged or unsupported (PcapError: `reason`, position). */
  ERR_L3DSR_PCAP: EXIT.failure,
  /** A balancer's new table set does not fit the room its core reserved at start (a restart makes room). */
  ERR_L3DSR_LB_TABLES: EXIT.failure,
  /** The WASM core was not built. */
  ERR_L3DSR_NO_CORE: EXIT.failure,
  /** The native TUN addon was not built. */
  ERR_L3DSR_NO_ADDON: EXIT.failure,
  /** npm run fuzz: the coverage build or its edge map is missing or stale. */
  ERR_L3DSR_COVERAGE_BUILD: EXIT.failure,
} as const satisfies Record<string, ExitStatus>;
export type ErrorCode = keyof typeof ERROR_CODES;

export class L3dsrError extends Error {
  override name = 'L3dsrError';
  constructor(readonly code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

/** The exit status of a command that stops on `err`. */
export const exitStatusOf = (err: L3dsrError): ExitStatus => ERROR_CODES[err.code];

/** Whether `err` is an L3dsrError (of one of `codes`, if given). */
export function isL3dsrError(err: unknown, ...codes: ErrorCode[]): err is L3dsrError {
  return err instanceof L3dsrError && (codes.length === 0 || codes.includes(err.code));
}

/** The errno code of a system error (`ENOENT`, `EACCES`…), if `err` is one. */
export function errnoOf(err: unknown): string | undefined {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}
