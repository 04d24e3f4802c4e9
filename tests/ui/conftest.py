"""Real parts for the dashboard's tests: its app on the migrated PostgreSQL and the Temporal dev
server; for the browser tests, a paper exchange and database of their own, a worker running real
trades (tests/workflows' harness), the webhook app taking alerts, and the dashboard served over
a real socket to the system's headless Chromium."""

from __future__ import annotations

import contextlib
import socket
import threading
import uuid
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest_asyncio
import uvicorn
from pydantic import SecretStr
from sqlalchemy import delete, text
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from db.models import RiskEvent, RiskState
from serving import server_options
from settings import Settings
from tests.support.paper import PaperExchange, run_paper_exchange
from tests.workflows.conftest import migrated_database, running_harness
from tests.workflows.harness import Harness
from ui.app import create_ui_app

TOKEN = "test-admin-token-dashboard-0123456789"
RATE_SCALE = Decimal(20)
SCREENSHOTS: list[Path] = []  # the folders screenshots went to, named in the summary


def ui_settings(db_url: str, temporal_target: str, state_dir: Path, **more: object) -> Settings:
    return Settings(_env_file=None, database_url=db_url, temporal_address=temporal_target,  # type: ignore[call-arg]
                    admin_token=SecretStr(TOKEN), state_dir=state_dir, **more)


@pytest_asyncio.fixture(loop_scope="session")
async def ui(db_url: str, temporal_env: WorkflowEnvironment, db_sessionmaker,
             tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    """The dashboard in-process (httpx's ASGI transport) on the session's database, which
    other packages' tests share: the trading states it changes are set back after."""
    settings = ui_settings(db_url, temporal_env.client.service_client.config.target_host, tmp_path)
    app = create_ui_app(settings)
    await _forget_states(db_sessionmaker)
    try:
        async with app.router.lifespan_context(app):
            async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                         base_url="http://127.0.0.1:8300") as http:
                yield http
    finally:
        await _forget_states(db_sessionmaker)


async def _forget_states(sessionmaker) -> None:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session, session.begin():
        await session.execute(delete(RiskState))
        await session.execute(delete(RiskEvent).where(RiskEvent.actor == "ui"))


# --- the browser tests' real parts ------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ui_paper() -> AsyncIterator[PaperExchange]:
    async with run_paper_exchange(paper_rate_limit_scale=RATE_SCALE) as exchange:
        yield exchange


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def ui_db(pg_server, ui_paper: PaperExchange) -> AsyncIterator[tuple[str, object]]:
    """A migrated database of the browser tests' own (they empty its tables)."""
    async with migrated_database(pg_server, ui_paper, "tw_ui") as db:
        yield db


@pytest_asyncio.fixture(loop_scope="session")
async def ui_harness(temporal_client: Client, ui_paper: PaperExchange,
                     ui_db) -> AsyncIterator[Harness]:
    """A worker with every activity on a task queue of this test, every table empty."""
    _, sessionmaker = ui_db
    async with sessionmaker() as session, session.begin():
        await session.execute(text("TRUNCATE signal, incident, risk_state, risk_event, risk_pnl,"
                                   " risk_day, strategy, trade, \"order\", fill CASCADE"))
    async with running_harness(temporal_client, ui_paper, ui_db,
                               f"tw-ui-{uuid.uuid4().hex[:10]}") as h:
        yield h


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def served(settings: Settings) -> Iterator[str]:
    """`tradewire ui`'s app and server options on a free loopback port, in a thread of its own
    (its own event loop: the browser's blocking calls never stall it, nor it the test's)."""
    port = free_port()
    config = uvicorn.Config(create_ui_app(settings),
                            **server_options(settings, host="127.0.0.1", port=port))
    config.timeout_graceful_shutdown = 1  # as `tradewire ui`: an open stream does not hold the stop
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="ui-server", daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):  # up to 30 s for the lifespan (engine, Temporal client)
            if server.started:
                break
            if not thread.is_alive():
                raise RuntimeError("the dashboard's server stopped while starting")
            threading.Event().wait(0.1)
        else:
            raise RuntimeError("the dashboard's server did not start within 30 s")
        yield base
    finally:
        server.should_exit = True
        thread.join(15)


def pytest_terminal_summary(terminalreporter) -> None:  # type: ignore[no-untyped-def]
    for folder in SCREENSHOTS:
        terminalreporter.write_line(f"dashboard screenshots: {folder}")
