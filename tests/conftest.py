"""Session-wide real parts: PostgreSQL and Temporal, each started once per test session on
free ports and temporary directories (tests run beside a live `make run`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support.postgres import PostgresServer, postgres_server
from tests.support.temporal import start_dev_server


@pytest.fixture(scope="session")
def pg_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PostgresServer]:
    with postgres_server(tmp_path_factory.mktemp("postgres")) as server:
        yield server


@pytest.fixture(scope="session")
def db_url(pg_server: PostgresServer) -> Iterator[str]:
    """A database migrated to head, shared by the session's tests."""
    from db.migrate import upgrade

    name = pg_server.create_database("tw_session")
    url = pg_server.url_for(name)
    upgrade(url)
    yield url
    pg_server.drop_database(name)


@pytest.fixture
def empty_db_url(pg_server: PostgresServer) -> Iterator[str]:
    """A brand-new empty database for one test."""
    name = pg_server.create_database("tw_empty")
    yield pg_server.url_for(name)
    pg_server.drop_database(name)


@pytest.fixture(scope="session")
async def temporal_env() -> AsyncIterator[WorkflowEnvironment]:
    env = await start_dev_server()
    try:
        yield env
    finally:
        await env.shutdown()


@pytest.fixture(scope="session")
def temporal_client(temporal_env: WorkflowEnvironment) -> Client:
    return temporal_env.client
