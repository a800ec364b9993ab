// The configuration file: INI-like, comments with `#` or `;`, so a person
// can write it and an existing dsr.conf (`VIP=DSCP` lines) works as it is.
//
//   # lines before any section are dsr.conf lines: VIP = DSCP, or VIP (L2DSR)
//   203.0.113.10 = 1
//   203.0.113.99
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
//
//   [lb web]              # a VIP of the load balancer (l3dsr lb): src/config/lb.ts
//   vip = 203.0.113.10
//   backends = 198.51.100.2, 198.51.100.3 weight=2

import { L3dsrError } from '../errors.js';

/** A problem in the configuration, at its file and line (code ERR_L3DSR_CONFIG). */
export class ConfigError extends L3dsrError {
  override name = 'ConfigError';
  /** Where the problem is: `FILE:LINE`, `FILE`, or `--rule SPEC`. */
  readonly source: string;
  constructor(readonly file: string, readonly line: number, readonly detail: string) {
    const source = `${file}${line > 0 ? `:${line}` : ''}`;
    super('ERR_L3DSR_CONFIG', `${source}: ${detail}`);
    this.source = source;
  }
}

/**
 * Everything found wrong in one load, in reading order: `l3dsr check`
 * lists them all, run and reload print them all and load nothing. It is a
 * ConfigError for its first problem, so a caller that knows only those works.
 */
export class ConfigErrors extends ConfigError {
  override name = 'ConfigErrors';
  constructor(readonly problems: readonly ConfigError[]) {
    super(problems[0].file, problems[0].line, problems[0].detail);
    this.message = problems.map((p) => p.message).join('\n');
  }
}

export interface Entry {
  key: string;
  /** undefined for a line without "=" (an L2DSR VIP in dsr.conf). */
  value: string | undefined;
  line: number;
}

export interface Section {
  /** `daemon`, `vips`, `rule` or `lb` (with a name), or `` for lines before any section. */
  kind: string;
  name?: string;
  /** The header could not be read (already reported): its entries mean nothing. */
  invalid?: true;
  line: number;
  entries: Entry[];
}

/** Splits the text into sections of `key = value` (or bare `key`) entries; a bad line goes to `problems` and is skipped. */
export function parseIni(text: string, file: string, problems: ConfigError[]): Section[] {
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
    if (s.startsWith('[')) {
      problems.push(new ConfigError(file, line, `expected a section header such as [daemon], [vips], [rule NAME] or [lb NAME], got "${s}"`));
      // Its lines belong to no known section: reading them as VIPs would only add false errors.
      sections.push({ kind: s, invalid: true, line, entries: [] });
      return;
    }
    const eq = s.indexOf('=');
    const key = eq < 0 ? s : s.slice(0, eq).trim();
    if (key === '') {
      problems.push(new ConfigError(file, line, `missing key before "=" in "${s}"`));
      return;
    }
    sections[sections.length - 1].entries.push({ key, value: eq < 0 ? undefined : s.slice(eq + 1).trim(), line });
  });
  return sections;
}

/**
 * `#` starts a comment anywhere, as in dsr.conf (`203.0.113.10=1#web`);
 * `;` only at the start of a line or after white space, as in INI files.
 */
function stripComment(line: string): string {
  const m = /#|(^|\s);/.exec(line);
  return m ? line.slice(0, m.index) : line;
}
