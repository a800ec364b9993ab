"""Attaches to an existing (persistent) TUN device and prints every packet
the kernel transmits on it, one hex line each, until killed.

Used by the steering tests to see what tc redirected into the TUN. Prints
"ready" once attached. Run it inside the TUN's network namespace.
usage: tun_capture.py TUN_NAME
"""
import fcntl
import os
import struct
import sys

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000
READ_SIZE = 65536 + 64


def main():
    fd = os.open("/dev/net/tun", os.O_RDWR)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", sys.argv[1].encode(), IFF_TUN | IFF_NO_PI))
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    while True:
        packet = os.read(fd, READ_SIZE)
        sys.stdout.write(packet.hex() + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
