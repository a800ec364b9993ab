"""Sends raw Ethernet frames out of an interface (AF_PACKET), in order.

Used by the steering tests to put exactly the bytes they want on a veth.
Run it inside the interface's network namespace.
usage: send_frames.py IFNAME < frames   (one hex frame per line)
"""
import socket
import sys


def main():
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((sys.argv[1], 0))
    for line in sys.stdin:
        line = line.strip()
        if line:
            sock.send(bytes.fromhex(line))


if __name__ == "__main__":
    main()
