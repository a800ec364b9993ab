// `l3dsr run`: parse and validate everything, then start the daemon.

import { RealServerSystem } from '../daemon/real-server.js';
import { daemonCommand } from './daemon-command.js';
import { DATA_PATH_FLAGS_HELP, LOG_FLAGS_HELP, parseRunOptions, RUN_USAGE } from './run-options.js';

export const RUN_HELP = `${RUN_USAGE}

The daemon: opens a TUN device, steers the packets marked with a rule's DSCP
into it (tc on the --steer interfaces), sets their destination to the rule's
address (the VIP) with the checksums fixed, and writes them back, until
SIGTERM or SIGINT; SIGHUP re-reads --config (rules, metrics, log-level and
log-format change at once; other [daemon] settings need a restart, and the
reload's log names them). Needs root (CAP_NET_ADMIN).
A flag wins over the same setting in the file's [daemon] section, also on reload.

      --config FILE          rules (VIP = DSCP lines, [vips], [rule NAME]) and [daemon] settings
      --rule DSCP=VIP        e.g. 1=203.0.113.10 or 1=2001:db8:203::10 (repeatable; kept across reloads)
      --steer IFACE          an interface where marked packets arrive (repeatable)
      --no-steer             install no tc filters: print the commands and leave steering to you
      --tun NAME             the TUN device (default dsr0)
${DATA_PATH_FLAGS_HELP}
      --metrics HOST:PORT    serve Prometheus /metrics there (e.g. 127.0.0.1:9109)
      --loopback-vips        add the VIPs to lo, and remove those it added on exit
${LOG_FLAGS_HELP}

Exit status: 0 stopped cleanly; 1 could not start, or stopped on an error;
2 bad usage or configuration (found before anything is touched).
`;

export function runCommand(argv: string[]): Promise<number> {
  return daemonCommand('run', argv, parseRunOptions, (opts, log, record) => new RealServerSystem(opts, log, record));
}
