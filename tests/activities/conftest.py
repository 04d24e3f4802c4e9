"""What the activity tests share: a database of each test module's own, migrated, with the pair
table synced from the paper exchange (a trade row needs its pair)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.migrate import upgrade
from db.session import make_engine, make_sessionmaker
from exchange.client import BitunixClient
from pair_catalog import sync_pairs


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sessionmaker(
    request: pytest.FixtureRequest, pg_server, paper_exchange
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    module = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    name = pg_server.create_database(f"tw_{module}")
    url = pg_server.url_for(name)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    client = BitunixClient(paper_exchange.base_url, paper_exchange.api_key,
                           SecretStr(paper_exchange.api_secret))
    try:
        await sync_pairs(client, maker)
        yield maker
    finally:
        await client.aclose()
        await engine.dispose()
        pg_server.drop_database(name)
