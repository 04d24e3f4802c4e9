"""Check, before anything starts, that every port `up` is about to bind is free.

A busy port is reported as one line that names the port, who needed it and the setting that
moves it, so the fix is obvious without reading a stack trace.
"""

from __future__ import annotations

import socket
from collections.abc import Iterable
from dataclasses import dataclass

from settings import Settings


@dataclass(frozen=True)
class PortClaim:
    """A port one component will listen on, and the setting (a `Settings` field) that sets it."""

    port: int
    field: str
    owner: str
    host: str | None = None  # where it will listen; None: the address port_problems is given

    @property
    def env_name(self) -> str:
        return setting_env_name(self.field)


def setting_env_name(field: str) -> str:
    """The environment variable of a `Settings` field (`webhook_port` → `TRADEWIRE_WEBHOOK_PORT`)."""
    prefix = Settings.model_config.get("env_prefix", "")
    return f"{prefix}{field}".upper()


def busy_message(claim: PortClaim) -> str:
    return f"port {claim.port} is busy ({claim.owner}): set {claim.env_name} to another port"


def duplicate_message(first: PortClaim, second: PortClaim) -> str:
    return (
        f"port {first.port} is set twice ({first.owner} and {second.owner}): "
        f"set {first.env_name} or {second.env_name} to another port"
    )


def port_is_free(host: str, port: int) -> bool:
    """True when a server could listen on host:port now.

    SO_REUSEADDR mirrors what the servers themselves set, so a port held only by a closed
    connection in TIME_WAIT counts as free, and only a live listener counts as busy.
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        return False
    family, socktype, proto, _, address = infos[0]
    with socket.socket(family, socktype, proto) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(address)
        except OSError:
            return False
    return True


def port_problems(host: str, claims: Iterable[PortClaim]) -> list[str]:
    """One line per problem: a port claimed twice, or a port something else already holds."""
    problems: list[str] = []
    seen: dict[int, PortClaim] = {}
    for claim in claims:
        if claim.port in seen:
            problems.append(duplicate_message(seen[claim.port], claim))
            continue
        seen[claim.port] = claim
        if not port_is_free(claim.host or host, claim.port):
            problems.append(busy_message(claim))
    return problems
