"""The simulator's own tests run one session-wide simulator with BitUnix's rate limits scaled
up (functional tests send bursts); test_ratelimit.py starts its own at the real scale."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio

from tests.paper.wire_client import WireClient
from tests.support.fixtures import paper  # noqa: F401
from tests.support.paper import PaperExchange, run_paper_exchange


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def paper_exchange() -> AsyncIterator[PaperExchange]:
    async with run_paper_exchange(paper_rate_limit_scale=1000) as exchange:
        yield exchange


@pytest_asyncio.fixture(loop_scope="session")
async def api(paper: PaperExchange) -> AsyncIterator[WireClient]:  # noqa: F811
    client = WireClient(paper.base_url, paper.api_key, paper.api_secret)
    yield client
    await client.aclose()
