"""Helpers shared by the devstack tests: free ports and a listener that holds one."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct ports the kernel just handed out (held together, so never repeated)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind((host, 0))
            socks.append(sock)
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


@contextlib.contextmanager
def listening(host: str = "127.0.0.1") -> Iterator[int]:
    """A live listener on a fresh port, as another program holding it would be."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        sock.listen()
        yield sock.getsockname()[1]
