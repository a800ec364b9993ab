// How the demo prints: numbered steps, indented detail, and the daemons'
// log lines worth showing.

export const INDENT = '     ';

export const say = (text = ''): void => {
  process.stdout.write(`${text}\n`);
};

export const step = (n: number, text: string): void => say(`\n${n}. ${text}`);

export const indent = (text: string): string =>
  text.trimEnd().split('\n').map((l) => (l.trim() ? `${INDENT}${l}` : '')).join('\n');

/**
 * A LabDaemon's onLine that prints the `msg` of the log lines matching
 * `show` (start-up, failures), prefixed with `who`.
 */
export function daemonLines(who: string, show: RegExp): (line: string) => void {
  return (line) => {
    const msg = /msg=("[^"]*"|\S+)/.exec(line)?.[1]?.replace(/^"|"$/g, '');
    if (msg && show.test(msg)) say(`${INDENT}  ${who}: ${msg}`);
  };
}
