// Why `l3dsr run` cannot start: said before the system is touched, or after
// what was done has been undone. The CLI prints the message and exits 1.

export class StartError extends Error {
  constructor(message: string, readonly code = 'ERR_L3DSR_START') { super(message); }
}
