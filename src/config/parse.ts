// The configuration file: INI-like, comments with `#` or `;`, so a person
// can write it and an existing dsr.conf (`VIP=DSCP` lines) works as it is.
//
//   # lines before any section are dsr.conf lines: VIP = DSCP
//   203.0.113.10 = 1
//
//   [daemon]
//   tun = dsr0
//   steer = eth0, eth1
//
//   [vips]
//   2001:db8:203::10 = 1
//
//   [rule web]            # the long form, for prefixes and DSCP rewriting
//   dscp = 1
//   destination = 203.0.113.20
//   match = 198.51.100.0/24
//   set-dscp = 0

export class ConfigError extends Error {
  readonly code = 'ERR_L3DSR_CONFIG';
  constructor(readonly file: string, readonly line: number, detail: string) {
    super(`${file}${line > 0 ? `:${line}` : ''}: ${detail}`);
    this.name = 'ConfigError';
  }
}

export interface Entry {
  key: string;
  value: string;
  line: number;
}

export interface Section {
  /** `daemon`, `vips`, `rule` (with a name), or `` for lines before any section. */
  kind: string;
  name?: string;
  line: number;
  entries: Entry[];
}

/** Splits the text into sections of key = value entries. */
export function parseIni(text: string, file: string): Section[] {
  const sections: Section[] = [{ kind: '', line: 0, entries: [] }];
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    const s = stripComment(raw).trim();
    if (s === '') return;
    const header = /^\[\s*([A-Za-z][\w-]*)(?:\s+([^\]\s][^\]]*?))?\s*\]$/.exec(s);
    if (header) {
      sections.push({ kind: header[1].toLowerCase(), name: header[2]?.trim(), line, entries: [] });
      return;
    }
    if (s.startsWith('[')) throw new ConfigError(file, line, `expected a section header such as [daemon], [vips] or [rule NAME], got "${s}"`);
    const eq = s.indexOf('=');
    if (eq < 0) throw new ConfigError(file, line, `expected "key = value", got "${s}"`);
    const key = s.slice(0, eq).trim();
    const value = s.slice(eq + 1).trim();
    if (key === '') throw new ConfigError(file, line, `missing key before "=" in "${s}"`);
    sections[sections.length - 1].entries.push({ key, value, line });
  });
  return sections;
}

/** Comments start at `#` or `;` at the start of a line or after white space. */
function stripComment(line: string): string {
  const m = /(^|\s)[#;]/.exec(line);
  return m ? line.slice(0, m.index) : line;
}
