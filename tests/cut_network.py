"""Run a command with no network but loopback: ``unshare -n python tests/cut_network.py COMMAND...``.

``unshare -n`` gives a network namespace whose only interface, ``lo``, starts down; this brings it
up (what ``ip link set lo up`` does, without needing iproute2), then becomes ``COMMAND``.
Kernels talk to Jupyter over 127.0.0.1, so lessons run; nothing else on any network is reachable.
"""

from __future__ import annotations

import fcntl
import os
import socket
import struct
import sys


def loopback_up() -> None:
    with socket.socket() as probe:
        request = struct.pack("16sh", b"lo", 0)
        flags = struct.unpack("16sh", fcntl.ioctl(probe, 0x8913, request)[:18])[1]  # SIOCGIFFLAGS
        fcntl.ioctl(probe, 0x8914, struct.pack("16sh", b"lo", flags | 0x1))  # SIOCSIFFLAGS with IFF_UP


if __name__ == "__main__":
    loopback_up()
    os.execvp(sys.argv[1], sys.argv[1:])
