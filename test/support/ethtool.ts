// The offload switches the offload tests read or flip on an interface (and
// GRO, which the balancer's benchmark turns on), through the SIOCETHTOOL
// ioctl's legacy per-feature commands (linux/ethtool.h). There is no
// ethtool binary on these machines; Python's standard library does the ioctl.
import { run, type Where } from '../../src/system/index.js';
import { PYTHON } from './python.js';

const SOURCE = `
import ctypes, fcntl, json, socket, struct, sys
SIOCETHTOOL, ETHTOOL_GTXCSUM, ETHTOOL_STXCSUM, ETHTOOL_GTSO, ETHTOOL_GGRO, ETHTOOL_SGRO = 0x8946, 0x16, 0x17, 0x1e, 0x2b, 0x2c
name, action = sys.argv[1].encode(), sys.argv[2]
sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
def ethtool(cmd, data=0):
    value = ctypes.create_string_buffer(struct.pack('II', cmd, data), 8)
    fcntl.ioctl(sock.fileno(), SIOCETHTOOL, struct.pack('16sP16x', name, ctypes.addressof(value)))
    return struct.unpack_from('II', value.raw)[1]
if action == 'tx-checksum-off':
    ethtool(ETHTOOL_STXCSUM, 0)
if action == 'gro-on':
    ethtool(ETHTOOL_SGRO, 1)
    print(json.dumps(ethtool(ETHTOOL_GGRO) != 0))
else:
    print(json.dumps({'txChecksum': ethtool(ETHTOOL_GTXCSUM) != 0, 'tso': ethtool(ETHTOOL_GTSO) != 0}))
`;

export interface OffloadState {
  /** Transmit checksum offload (any of the NETIF_F_CSUM_MASK features). */
  txChecksum: boolean;
  /** TCP segmentation offload (IPv4 or IPv6). */
  tso: boolean;
}

/** What the kernel says about `dev`'s transmit offloads (where: the caller's namespace by default). */
export async function offloadState(dev: string, where: Where = {}): Promise<OffloadState> {
  return JSON.parse(await run(PYTHON, ['-c', SOURCE, dev, 'get'], where)) as OffloadState;
}

/**
 * Turns transmit checksum offload off on `dev`, and with it TSO, which
 * needs it: the kernel then segments GSO packets in software and computes
 * every checksum itself before they leave. Returns the state afterwards.
 */
export async function disableTxChecksumOffload(dev: string, where: Where = {}): Promise<OffloadState> {
  return JSON.parse(await run(PYTHON, ['-c', SOURCE, dev, 'tx-checksum-off'], where)) as OffloadState;
}

/** Turns GRO on on `dev` (on a veth that also makes it receive through NAPI); whether the kernel says it is on. */
export async function enableGro(dev: string, where: Where = {}): Promise<boolean> {
  return JSON.parse(await run(PYTHON, ['-c', SOURCE, dev, 'gro-on'], where)) as boolean;
}
