"""Contract tests: every BitunixClient method against the paper exchange over real HTTP."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
from pydantic import SecretStr

from exchange.client import BitunixClient
from tests.support import fixtures

SYMBOL = "BTCUSDT"

# The simulator helper's fixtures: the session's paper exchange, reset before each test.
paper_exchange = fixtures.paper_exchange
paper = fixtures.paper


def client_for(
    exchange, *, secret: str | None = None, key: str | None = None, timeout_s: str = "5"
) -> BitunixClient:
    """A separate client (own budget and pool) for tests that need other keys or timeouts."""
    return BitunixClient(
        exchange.base_url,
        key if key is not None else exchange.api_key,
        SecretStr(secret if secret is not None else exchange.api_secret),
        timeout_s=Decimal(timeout_s),
    )


@pytest.fixture(scope="session")
async def session_client(paper_exchange) -> AsyncIterator[BitunixClient]:
    """One client (one request budget) for the whole session, so the budget sees every
    request the tests make and the paper exchange's own limits are never tripped."""
    async with client_for(paper_exchange) as client:
        yield client


@pytest.fixture
async def client(paper, session_client: BitunixClient) -> BitunixClient:
    return session_client


@pytest.fixture
def closed_port_url() -> str:
    """A URL on which nothing listens: connection refused before anything is sent."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
