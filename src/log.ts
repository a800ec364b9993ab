// Structured logs: one line per event on stderr, logfmt by default
// (`ts=… level=info msg="…" key=value`) or JSON lines, so both a person and
// journald/a log shipper can read them.

/** The levels, least severe first (the config file, --log-level). */
export const LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export type Level = (typeof LEVELS)[number];
const ORDER: Record<Level, number> = { debug: 10, info: 20, warn: 30, error: 40 };
export const LOG_FORMATS = ['logfmt', 'json'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
}

/** A logger whose level and format can change while it runs (a reload). */
export interface AdjustableLogger extends Logger {
  adjust(change: { level?: Level; format?: LogFormat }): void;
}

export interface LoggerOptions {
  level?: Level;
  format?: LogFormat;
  write?: (line: string) => void;
  /** Fields on every line (e.g. queue=1). */
  base?: Record<string, unknown>;
}

function logfmtValue(v: unknown): string {
  const s = v instanceof Error ? v.message : typeof v === 'string' ? v : JSON.stringify(v, (_, x) => (typeof x === 'bigint' ? x.toString() : x));
  return /^[^\s"=]+$/.test(s ?? '') ? s : JSON.stringify(s ?? '');
}

export function createLogger(opts: LoggerOptions = {}): AdjustableLogger {
  let min = ORDER[opts.level ?? 'info'];
  let format = opts.format ?? 'logfmt';
  const write = opts.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const emit = (level: Level, msg: string, fields: Record<string, unknown> = {}) => {
    if (ORDER[level] < min) return;
    const all = { ts: new Date().toISOString(), level, msg, ...opts.base, ...fields };
    if (format === 'json') {
      write(JSON.stringify(all, (_, x) => (typeof x === 'bigint' ? x.toString() : x instanceof Error ? x.message : x)));
    } else {
      write(Object.entries(all).filter(([, v]) => v !== undefined).map(([k, v]) => `${k}=${logfmtValue(v)}`).join(' '));
    }
  };
  return {
    debug: (m, f) => emit('debug', m, f),
    info: (m, f) => emit('info', m, f),
    warn: (m, f) => emit('warn', m, f),
    error: (m, f) => emit('error', m, f),
    adjust: (change) => {
      if (change.level !== undefined) min = ORDER[change.level];
      if (change.format !== undefined) format = change.format;
    },
  };
}
