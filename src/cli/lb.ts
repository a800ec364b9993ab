// `l3dsr lb`: the balancer's daemon. The same flags as `l3dsr run`, less
// the real server's (--rule, --loopback-vips), and its configuration's
// [lb] sections (docs/lb.md).

import { loadLbConfiguration } from '../config/load.js';
import { BalancerSystem } from '../daemon/balancer-system.js';
import { lbDaemonSettings, resolveSettings, type LbOptions } from '../daemon/options.js';
import { controlSocketPath } from '../daemon/runtime-dir.js';
import { L3dsrError } from '../errors.js';
import { DEFAULT_CONNECTIONS } from '../lb/connections.js';
import { daemonCommand } from './daemon-command.js';
import { DATA_PATH_FLAGS_HELP, LOG_FLAGS_HELP, checkDaemonInterfaces, parseDaemonFlags, RUN_OPTIONS } from './run-options.js';

export const LB_USAGE = `usage: l3dsr lb --config PATH [--config PATH ...] [--tun NAME] [--steer IFACE ...] [--no-steer]
                [--queues N] [--metrics HOST:PORT] [--engine auto|io_uring|readwrite] [--offload | --no-offload]
                [--batch N] [--log-level LEVEL] [--log-format logfmt|json] [--control-socket PATH]`;

/** The flags of `l3dsr lb`: run's daemon flags, without the real server's. */
export const LB_OPTIONS = (({ rule: _rule, 'loopback-vips': _loopback, ...daemon }) => daemon)(RUN_OPTIONS);

export const LB_HELP = `${LB_USAGE}

The load balancer (docs/lb.md): opens a TUN device, steers every packet to a
VIP of its [lb] sections into it (tc on the --steer interfaces, where client
traffic arrives), picks a backend from the VIP's Maglev table (a connection
table keeps established flows on theirs), sets the VIP's DSCP and the
backend as the destination, and writes the packet back for the kernel to
forward; the backends' l3dsr run restores the VIP and they answer the
clients directly. Runs until SIGTERM or SIGINT; SIGHUP re-reads --config
(the [lb] sections, metrics, log-level and log-format change at once; other
[daemon] settings need a restart). Needs CAP_NET_ADMIN (and CAP_NET_RAW for
health checks other than none), and IP forwarding on for the VIPs' families
(it does not turn it on).
A flag wins over the same setting in the file's [daemon] section, also on reload.

      --config FILE          [lb NAME] sections and [daemon] settings (required)
      --steer IFACE          an interface where client packets for the VIPs arrive (repeatable)
      --no-steer             install no tc filters: print the commands and leave steering to you
      --tun NAME             the TUN device (default lb0)
${DATA_PATH_FLAGS_HELP}
      --metrics HOST:PORT    serve Prometheus /metrics there (e.g. 127.0.0.1:9110)
${LOG_FLAGS_HELP}

Exit status: 0 stopped cleanly; 1 could not start, or stopped on an error;
2 bad usage or configuration (found before anything is touched).
`;

export async function parseLbOptions(argv: string[]): Promise<LbOptions> {
  const { values: v, flags } = parseDaemonFlags(argv, LB_OPTIONS, LB_USAGE);
  const configPaths = v.config ?? [];
  if (configPaths.length === 0) throw new L3dsrError('ERR_L3DSR_USAGE', `--config: the balancer's [lb] sections come from a configuration file\n${LB_USAGE}`);
  const config = await loadLbConfiguration({ configs: configPaths });
  const settings = resolveSettings(flags, lbDaemonSettings(config.daemon));
  checkDaemonInterfaces(settings, 'client packets for the VIPs');
  return {
    command: 'lb',
    ...settings,
    flags,
    configPaths,
    vips: config.vips,
    connections: config.daemon.connections ?? DEFAULT_CONNECTIONS,
    warnings: [...config.warnings],
    controlSocket: v['control-socket'] ?? controlSocketPath(settings.tun),
  };
}

export function lbCommand(argv: string[]): Promise<number> {
  return daemonCommand('lb', argv, parseLbOptions, (opts, log, record) => new BalancerSystem(opts, log, record));
}
