// The Python the tests drive helper scripts with: python3 as found on the
// PATH (only its standard library is used), never a path of one machine.
export const PYTHON = 'python3';
