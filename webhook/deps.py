"""What request handlers depend on: the process's state, reached through FastAPI dependencies."""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from settings import Settings

if TYPE_CHECKING:
    from temporalio.client import Client

log = logging.getLogger("webhook")


class TemporalHandle:
    """A Temporal client that may not exist yet: the webhook starts (and answers /healthz with
    "temporal: fail") even while Temporal is down, and connects on first need."""

    def __init__(self, target: str, namespace: str) -> None:
        self.target = target
        self.namespace = namespace
        self._client: Client | None = None
        self._lock = asyncio.Lock()

    @property
    def connected(self) -> bool:
        return self._client is not None

    async def try_connect(self) -> Client | None:
        if self._client is not None:
            return self._client
        # Imported here: the dashboard's pages need no Temporal until one acts or asks a
        # trade's workflow, and its SDK is ~15 MiB of a process's resident memory.
        from workflows.converter import connect

        async with self._lock:
            if self._client is None:
                try:
                    self._client = await asyncio.wait_for(connect(self.target, self.namespace), 3)
                except Exception as exc:  # noqa: BLE001 - reported by /healthz, retried later
                    log.warning("Temporal at %s is not reachable: %s", self.target, exc)
        return self._client


@dataclass
class AppState:
    settings: Settings
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    temporal: TemporalHandle
    # Set by the fast path: called with an open's symbol as soon as it is known, so the
    # exchange reads the trade decides with are under way while the alert is recorded.
    # Fire and forget: it never raises and never waits.
    warm_venue: Callable[[str], None] | None = None


async def app_state(request: Request) -> AppState:
    # async: FastAPI runs a plain `def` dependency on a worker thread, a thread hop per alert
    return request.app.state.tw


def has_admin_token(request: Request, settings: Settings) -> bool:
    """True when the request carries the admin token as a Bearer token (constant-time check)."""
    expected = settings.resolve_admin_token()
    header = request.headers.get("authorization", "")
    scheme, _, given = header.partition(" ")
    if not expected or scheme.lower() != "bearer" or not given:
        return False
    return secrets.compare_digest(given.strip().encode(), expected.encode())
