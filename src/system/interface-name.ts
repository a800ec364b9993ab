// Linux interface names: one rule for every path that takes one (--tun,
// --steer, the config file, TunDevice.open), checked before the name reaches
// the kernel, a tool or the native addon. The rule is the kernel's own
// (dev_valid_name, on the UTF-8 bytes) plus no control characters, so a name
// that passes is never cut short or refused later. A leading "-" is refused
// too: ip and tc would read the name as an option (a state file written by
// someone else could smuggle "-batch" into their arguments).

/** Linux limit on interface names, in bytes (IFNAMSIZ − 1). */
export const MAX_INTERFACE_NAME = 15;

export interface InterfaceNameProblem {
  /** The errno the kernel would answer: ENAMETOOLONG for the length, EINVAL for the rest. */
  errno: 'ENAMETOOLONG' | 'EINVAL';
  /** E.g. `"tunnel-to-köln1" is not an interface name: 15 characters but 16 bytes in UTF-8, and the kernel's limit is 15 bytes`. */
  message: string;
}

// Bytes the kernel refuses in a name: "/" and ":" (sysfs paths, address
// labels) and what its isspace() matches, which counts Latin-1's no-break
// space 0xA0 (so a character whose UTF-8 holds that byte, like "à", is out);
// control characters below 0x20 and 0x7F are refused here, too.
const SLASH = 0x2f;
const COLON = 0x3a;
const SPACE = 0x20;
const DELETE = 0x7f;
const LATIN1_NO_BREAK_SPACE = 0xa0;

/** Why `name` cannot name a Linux interface, or undefined if it can. */
export function interfaceNameProblem(name: string): InterfaceNameProblem | undefined {
  const invalid = (why: string): InterfaceNameProblem => ({ errno: 'EINVAL', message: `${JSON.stringify(name)} is not an interface name: ${why}` });
  if (name === '') return invalid('it is empty');
  if (/\p{Cs}/u.test(name)) return invalid('it holds a lone UTF-16 surrogate, which has no UTF-8 encoding');
  const bytes = Buffer.byteLength(name, 'utf8');
  if (bytes > MAX_INTERFACE_NAME) {
    const length = [...name].length === bytes ? `${bytes} characters` : `${[...name].length} characters but ${bytes} bytes in UTF-8`;
    return { errno: 'ENAMETOOLONG', message: `${JSON.stringify(name)} is not an interface name: ${length}, and the kernel's limit is ${MAX_INTERFACE_NAME} bytes` };
  }
  if (name === '.' || name === '..') return invalid('the kernel refuses "." and ".."');
  if (name.startsWith('-')) return invalid('it starts with "-", which ip and tc would read as an option');
  for (const ch of name) {
    for (const b of Buffer.from(ch, 'utf8')) {
      if (b === SLASH || b === COLON) return invalid(`the kernel refuses "${ch}" in a name`);
      if (b <= SPACE || b === DELETE) return invalid('it holds a space or a control character');
      if (b === LATIN1_NO_BREAK_SPACE) return invalid(`the UTF-8 encoding of "${ch}" holds byte 0xA0, which the kernel takes for a space`);
    }
  }
  return undefined;
}

/** Whether `name` is a string that names a Linux interface (for values read back from a file). */
export function isInterfaceName(name: unknown): name is string {
  return typeof name === 'string' && interfaceNameProblem(name) === undefined;
}
