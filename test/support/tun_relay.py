"""Feeds raw L3 packets into one TUN device and collects what the kernel
transmits on another, one packet at a time.

Used by kernel-nft.ts: it runs inside a throw-away network namespace where
the two TUN devices already exist (persistent, `ip tuntap add`). Writing one
packet and then draining the output TUN before writing the next keeps the
input/output pairing exact, so no marker in the payload is needed.

stdin:  {"input": "tunA", "output": "tunB", "packets": ["hex", ...],
         "probe": "hex", "settle_ms": 200}
stdout: [{"output": "hex" | null, "extra": ["hex", ...], "error": "..."}, ...]

Only the standard library: any python3 on the PATH will do.
"""
import errno
import fcntl
import json
import os
import select
import struct
import sys
import time

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
READ_SIZE = 65536 + 64
PROBE_TRIES = 40
PROBE_WAIT_MS = 50


def open_tun(name):
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    ifr = struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI)
    fcntl.ioctl(fd, TUNSETIFF, ifr)
    return fd


def drain(fd, first_wait_ms):
    """Everything the kernel queued on fd; waits up to first_wait_ms for the first packet."""
    packets = []
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    wait = first_wait_ms
    while True:
        if not poller.poll(wait):
            return packets
        try:
            packets.append(os.read(fd, READ_SIZE))
        except OSError as e:
            if e.errno == errno.EAGAIN:
                return packets
            raise
        wait = 0


def wait_until_path_works(tun_in, tun_out, probe):
    """Attaching a reader raises the TUN's carrier, but the kernel activates
    its queue asynchronously (linkwatch): until then transmitted packets are
    dropped. Send a probe until one comes through, then discard everything
    queued so far."""
    for _ in range(PROBE_TRIES):
        os.write(tun_in, probe)
        if drain(tun_out, PROBE_WAIT_MS):
            time.sleep(PROBE_WAIT_MS / 1000)
            drain(tun_out, 0)
            return
    sys.exit("tun_relay: no probe packet came through the namespace within %d ms"
             % (PROBE_TRIES * PROBE_WAIT_MS))


def main():
    job = json.load(sys.stdin)
    settle_ms = int(job.get("settle_ms", 200))
    tun_in = open_tun(job["input"])
    tun_out = open_tun(job["output"])
    wait_until_path_works(tun_in, tun_out, bytes.fromhex(job["probe"]))
    results = []
    for text in job["packets"]:
        result = {"output": None, "extra": []}
        try:
            os.write(tun_in, bytes.fromhex(text))
        except OSError as e:
            result["error"] = "write: " + os.strerror(e.errno)
            results.append(result)
            continue
        # The ingress path runs in the writer's context, so the packet is
        # usually queued already; settle_ms only bounds the wait for a
        # packet the kernel dropped.
        out = drain(tun_out, 0) or drain(tun_out, settle_ms)
        if out:
            result["output"] = out[0].hex()
            result["extra"] = [p.hex() for p in out[1:]]
        results.append(result)
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
