// What counts as an interface name, for every name the daemon hands to ip
// and tc: from the command line, the config file, or a state file it reads
// back. The kernel (dev_valid_name) refuses "/", ":", white space, "." and
// ".."; we also refuse a leading "-", which ip and tc would read as an option.

/** Linux limit on interface names (IFNAMSIZ − 1). */
export const MAX_INTERFACE_NAME = 15;

/** The characters allowed, for error messages. */
export const INTERFACE_NAME_RULE = `1-${MAX_INTERFACE_NAME} letters, digits, _ . -, not starting with -`;

export function isInterfaceName(name: unknown): name is string {
  return typeof name === 'string' && /^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,14}$/.test(name) && name !== '.' && name !== '..';
}
