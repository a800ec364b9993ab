// README.md read as test/readme.test.ts reads it: the fenced code blocks of
// the sections a user follows, and the commands they show.
//
// The extraction rule, which the README keeps to:
// - Only the sections named in CHECKED_SECTIONS count (`## ` headings).
// - A fenced block there is one of three kinds, by its info string:
//   `sh`  — commands: each line is one command, after its indentation is
//           trimmed and a trailing comment (a `#` after a space) is cut;
//           blank lines and lines that are only a comment are not commands;
//   `ini` — the example configuration;
//   none  — in "Command line" only: the synopsis, one entry per line that
//           starts with `l3dsr ` (indented lines continue it).
//   Any other block there is an error, so that a new block cannot escape the
//   test by its kind.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { L3DSR_BIN } from './daemon.js';

export const ROOT = dirname(dirname(L3DSR_BIN));
export const README = join(ROOT, 'README.md');

/** The sections whose commands must each have a check. */
export const CHECKED_SECTIONS = ['Quick start', 'Deploying on a real server', 'Configuration', 'Command line'] as const;
export type CheckedSection = typeof CHECKED_SECTIONS[number];

export interface FencedBlock {
  section: CheckedSection;
  info: string;
  /** The lines between the fences, indentation of the fence removed. */
  lines: string[];
  /** README line of the opening fence (1-based). */
  line: number;
}

export interface ReadmeCommand {
  /** The command as the README shows it, comment cut. */
  text: string;
  section: CheckedSection;
  line: number;
}

export interface Readme {
  text: string;
  /** Each checked section's text, heading excluded. */
  sections: Record<CheckedSection, string>;
  blocks: FencedBlock[];
  commands: ReadmeCommand[];
  /** Synopsis entries, continuation lines joined with one space. */
  synopsis: string[];
  /** The lines of the one `ini` block. */
  config: string[];
}

/** A trailing comment starts at a `#` after white space. */
export const commandOf = (line: string): string => line.trim().replace(/(^|\s)#.*$/, '').trim();

export function readReadme(path = README): Readme {
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  const sections = {} as Record<CheckedSection, string>;
  const blocks: FencedBlock[] = [];
  let section: string | undefined;
  let sectionStart = 0;
  const closeSection = (end: number) => {
    if (section !== undefined && (CHECKED_SECTIONS as readonly string[]).includes(section)) {
      sections[section as CheckedSection] = lines.slice(sectionStart, end).join('\n');
    }
  };
  for (let i = 0; i < lines.length; i++) {
    const heading = /^## (.+)$/.exec(lines[i]!);
    if (heading) {
      closeSection(i);
      section = heading[1]!.trim();
      sectionStart = i + 1;
      continue;
    }
    const fence = /^(\s*)```(\S*)\s*$/.exec(lines[i]!);
    if (!fence) continue;
    const indent = fence[1]!.length;
    const open = i;
    const body: string[] = [];
    for (i++; i < lines.length && !/^\s*```\s*$/.test(lines[i]!); i++) {
      const l = lines[i]!;
      body.push(l.startsWith(' '.repeat(indent)) ? l.slice(indent) : l.trimStart());
    }
    if (i === lines.length) throw new Error(`README.md:${open + 1}: a fenced block that is never closed`);
    if (section !== undefined && (CHECKED_SECTIONS as readonly string[]).includes(section)) {
      blocks.push({ section: section as CheckedSection, info: fence[2]!, lines: body, line: open + 1 });
    }
  }
  closeSection(lines.length);
  for (const s of CHECKED_SECTIONS) if (sections[s] === undefined) throw new Error(`README.md has no section "## ${s}"`);

  const commands: ReadmeCommand[] = [];
  const synopsis: string[] = [];
  const configs: string[][] = [];
  for (const b of blocks) {
    if (b.info === 'sh') {
      b.lines.forEach((l, k) => {
        const command = commandOf(l);
        if (command !== '') commands.push({ text: command, section: b.section, line: b.line + 1 + k });
      });
    } else if (b.info === 'ini') {
      configs.push(b.lines);
    } else if (b.info === '' && b.section === 'Command line') {
      for (const l of b.lines) {
        if (l.startsWith('l3dsr ')) synopsis.push(l.trim());
        else if (/^\s+\S/.test(l) && synopsis.length > 0) synopsis[synopsis.length - 1] += ` ${l.trim()}`;
        else if (l.trim() !== '') throw new Error(`README.md:${b.line}: a synopsis line that is not a command: "${l}"`);
      }
    } else {
      throw new Error(`README.md:${b.line}: a \`\`\`${b.info} block in "${b.section}": the README test knows sh (commands), ini (the configuration) and, in "Command line", the untagged synopsis`);
    }
  }
  if (configs.length !== 1) throw new Error(`README.md: expected one \`\`\`ini block (the example configuration), found ${configs.length}`);
  return { text, sections, blocks, commands, synopsis, config: configs[0]! };
}
