"""Fixtures for the trade workflow tests: a paper exchange of their own (BitUnix's rate limits
raised, since the test, the worker and the watcher share one account), the pair table synced
once, and a `harness` per test: a worker on a uuid task queue with the real activities."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import text
from temporalio.client import Client

from db.migrate import upgrade
from db.session import make_engine, make_sessionmaker
from exchange.client import BitunixClient
from pair_catalog import sync_pairs
from settings import Settings
from tests.support.paper import PaperExchange, run_paper_exchange
from tests.workflows.harness import Harness
from worker import Deps, build_worker, start_watcher

RATE_SCALE = Decimal(20)
QUICK_VISIBILITY_S = Decimal(3)


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def wf_paper() -> AsyncIterator[PaperExchange]:
    async with run_paper_exchange(paper_rate_limit_scale=RATE_SCALE) as exchange:
        yield exchange


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def wf_db(pg_server, wf_paper: PaperExchange) -> AsyncIterator[tuple[str, object]]:
    """A migrated database of the workflow tests' own: the paper exchange restarts its ids on
    every reset, so these tests empty the trade tables before each test (see `running_harness`),
    which they must not do to the database other packages share."""
    async with migrated_database(pg_server, wf_paper, "tw_workflows") as db:
        yield db


@contextlib.asynccontextmanager
async def migrated_database(pg_server, paper: PaperExchange,
                            name: str) -> AsyncIterator[tuple[str, object]]:
    """A database of its own, migrated, with the paper exchange's pairs synced: (url,
    sessionmaker); dropped afterwards."""
    name = pg_server.create_database(name)
    db_url = pg_server.url_for(name)
    await asyncio.to_thread(upgrade, db_url)
    engine = make_engine(db_url)
    sessionmaker = make_sessionmaker(engine)
    client = exchange_client(paper)
    try:
        await sync_pairs(client, sessionmaker)
        yield db_url, sessionmaker
    finally:
        await client.aclose()
        await engine.dispose()
        pg_server.drop_database(name)


def exchange_client(paper: PaperExchange) -> BitunixClient:
    return BitunixClient(paper.base_url, paper.api_key, SecretStr(paper.api_secret),
                         budget_scale=RATE_SCALE)


def harness_settings(paper: PaperExchange, db_url: str, task_queue: str, target: str) -> Settings:
    return Settings(
        _env_file=None,  # type: ignore[call-arg]
        exchange_base_url=paper.base_url,
        database_url=db_url,
        task_queue=task_queue,
        temporal_address=target,
        watcher_interval_s=Decimal("0.5"),
        exchange_budget_scale=RATE_SCALE,
    )


@pytest.fixture
def task_queue() -> str:
    return f"tw-test-{uuid.uuid4().hex[:10]}"


@pytest_asyncio.fixture(loop_scope="session")
async def harness(
    temporal_client: Client, wf_paper: PaperExchange, wf_db, task_queue: str
) -> AsyncIterator[Harness]:
    """A running worker with every activity, on this test's task queue."""
    async with running_harness(temporal_client, wf_paper, wf_db, task_queue) as h:
        yield h


@pytest_asyncio.fixture(loop_scope="session")
async def quick_harness(
    temporal_client: Client, wf_paper: PaperExchange, wf_db, task_queue: str
) -> AsyncIterator[Harness]:
    """A harness whose worker takes the exchange to show a new order or TP/SL within
    QUICK_VISIBILITY_S (TRADEWIRE_ORDER_VISIBILITY_S): a test need not wait 30 s for one to
    be old enough that its absence from every list means something."""
    async with running_harness(temporal_client, wf_paper, wf_db, task_queue,
                               order_visibility_s=QUICK_VISIBILITY_S) as h:
        yield h


@contextlib.asynccontextmanager
async def running_harness(
    temporal_client: Client, paper: PaperExchange, wf_db, task_queue: str,
    *, in_process_worker: bool = True, **settings_overrides: object,
) -> AsyncIterator[Harness]:
    """Empty trade tables, a reset paper exchange and (unless the test runs its own worker
    processes) a worker in this process; `settings_overrides` change the worker's Settings."""
    db_url, sessionmaker = wf_db
    await paper.admin.reset()
    async with sessionmaker() as session, session.begin():
        await session.execute(text('TRUNCATE trade, "order", fill, position CASCADE'))
    target = temporal_client.service_client.config.target_host
    settings = harness_settings(paper, db_url, task_queue, target).model_copy(
        update=settings_overrides)
    exchange = exchange_client(paper)
    deps = Deps(exchange=exchange, sessionmaker=sessionmaker, temporal=temporal_client)
    h = Harness(temporal_client, task_queue, paper, exchange, sessionmaker, settings)
    try:
        if in_process_worker:
            async with build_worker(temporal_client, settings, deps, task_queue=task_queue):
                yield h
                await _stop_all(h)
        else:
            yield h
            await _stop_all(h)
    finally:
        await exchange.aclose()


async def _stop_all(h: Harness) -> None:
    for handle in h.started:
        await _stop(handle)


@pytest_asyncio.fixture(loop_scope="session")
async def watcher(harness: Harness) -> AsyncIterator[str]:
    """The account watcher of the harness's task queue, stopped after the test."""
    wid = await start_watcher(harness.client, harness.settings, task_queue=harness.task_queue)
    yield wid
    await _stop(harness.client.get_workflow_handle(wid))


async def _stop(handle) -> None:
    try:
        desc = await handle.describe()
        if desc.status is not None and desc.status.name == "RUNNING":
            await handle.terminate("test finished")
    except Exception:  # noqa: BLE001 - already gone
        pass
