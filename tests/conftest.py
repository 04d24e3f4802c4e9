"""Session-wide real parts: PostgreSQL and Temporal, each started once per test session on
free ports and temporary directories (tests run beside a live `make run`)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator

import pytest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support.postgres import PostgresServer, postgres_server
from tests.support.temporal import start_dev_server

# Tests run beside a live `make run`, whose webhook and worker hold the default metrics ports:
# the apps and processes the tests start serve no /metrics unless a test asks for a port.
os.environ.setdefault("TRADEWIRE_METRICS_PORT", "0")

_session: list[pytest.Session] = []


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    _session.append(session)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    """The run is over and reported: end with its status without the interpreter's teardown. This
    process ran Temporal clients and workers, whose Rust threads can crash the teardown
    (logs.exit_process says why), turning a green run into a SIGABRT. Not for a usage error:
    pytest prints its message after this hook."""
    if not _session:
        return
    status = int(_session[-1].exitstatus)
    if status == pytest.ExitCode.USAGE_ERROR:
        return
    import logs

    logs.exit_process(status)


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


# --- the paper exchange over real HTTP, and a client and database sessions for it ------------

from tests.support.fixtures import paper, paper_exchange  # noqa: E402, F401


@pytest.fixture
async def paper_client(paper_exchange) -> AsyncIterator[object]:  # noqa: F811
    """A BitunixClient pointed at the session's paper exchange (same code path as live)."""
    from pydantic import SecretStr

    from exchange.client import BitunixClient

    client = BitunixClient(
        paper_exchange.base_url, paper_exchange.api_key, SecretStr(paper_exchange.api_secret)
    )
    try:
        yield client
    finally:
        await client.aclose()


@pytest.fixture(scope="session")
async def db_sessionmaker(db_url: str) -> AsyncIterator[object]:
    from db.session import make_engine, make_sessionmaker

    engine = make_engine(db_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()
