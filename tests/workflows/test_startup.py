"""Startup reconciliation (docs/design.md#startup-reconciliation): a worker holds the books
against the exchange once before it takes any task. Real parts: the paper exchange over HTTP,
PostgreSQL, Temporal, and (for the order of things) a real `python -m worker` process."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import pytest_asyncio
from sqlalchemy import text

from activities.watcher import FillWindow
from db.models import Trade
from tests.workflows.conftest import RATE_SCALE, running_harness
from tests.workflows.harness import Harness
from tests.workflows.processes import WorkerProcess, worker_env
from tests.workflows.test_incidents import buy_by_hand
from trading.types import TradeStatus
from worker import Deps, startup_round, watcher_activities

STARTED = "startup reconciliation: every open trade signalled"


async def a_trade_without_workflow(h: Harness) -> str:
    """An open trade whose workflow is gone (terminated by hand, say)."""
    async with h.sessionmaker() as session, session.begin():
        row = Trade(workflow_id="trade-gone-1", symbol="BTCUSDT", side="LONG", intent="OPEN_LONG",
                    entry_type="market", status=TradeStatus.TRACKING.value)
        session.add(row)
    return "trade-gone-1"


@pytest_asyncio.fixture(loop_scope="session")
async def h(harness: Harness) -> AsyncIterator[Harness]:
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(text("TRUNCATE incident"))
    yield harness


async def test_the_startup_round_signals_every_open_trade_and_says_what_is_out_of_line(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="worker")
    await a_trade_without_workflow(h)
    await buy_by_hand(h)
    deps = Deps(exchange=h.exchange, sessionmaker=h.sessionmaker, temporal=h.client)
    assert await startup_round(deps, h.settings) is True
    [line] = [r.getMessage() for r in caplog.records if r.getMessage().startswith(STARTED)]
    assert "1 open trade(s) without a running workflow" in line
    assert "out of line now (an incident if it lasts): unowned_quantity:BTCUSDT:LONG" in line


async def test_a_startup_round_that_cannot_reach_the_exchange_says_so_and_lets_the_worker_start(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="worker")
    await h.paper.admin.faults(error_rate=1.0)
    try:
        deps = Deps(exchange=h.exchange, sessionmaker=h.sessionmaker, temporal=h.client)
        assert await startup_round(deps, h.settings, tries=1) is False
    finally:
        await h.paper.admin.faults(error_rate=0)
    assert any(r.getMessage().startswith("startup reconciliation could not run")
               for r in caplog.records)


@pytest.mark.slow
async def test_a_worker_process_reconciles_before_it_polls(
    temporal_client, wf_paper, wf_db, task_queue: str, tmp_path: Path
) -> None:
    async with running_harness(temporal_client, wf_paper, wf_db, task_queue,
                               in_process_worker=False) as h:
        await a_trade_without_workflow(h)
        env = worker_env(db_url=wf_db[0], temporal=temporal_client.service_client.config.target_host,
                         task_queue=task_queue, exchange_url=h.paper.base_url,
                         api_key=h.paper.api_key, api_secret=h.paper.api_secret,
                         budget_scale=str(RATE_SCALE))
        worker = WorkerProcess(env=env, workdir=tmp_path)
        try:
            await worker.start(h.client, task_queue)
        finally:
            worker.stop()
        log = worker.log()
        assert STARTED in log and "worker polling task queue" in log, worker.output()
        assert log.index(STARTED) < log.index("worker polling task queue")
        assert "1 open trade(s) without a running workflow" in log


async def test_a_trade_without_workflow_is_signalled_every_round_but_logged_once(
    h: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    """The watcher signals an open trade whose workflow is gone every round until it is
    resumed; saying so at INFO every round (every 1.5 s, for as long as the incident stays
    open) buried the log. The first round says it; the repeats are DEBUG."""
    caplog.set_level(logging.DEBUG, logger="activities.watcher")
    await a_trade_without_workflow(h)
    deps = Deps(exchange=h.exchange, sessionmaker=h.sessionmaker, temporal=h.client)
    watcher = watcher_activities(deps, h.settings)
    window = FillWindow()
    view = await watcher.round(None, window)
    assert "trade-gone-1" in watcher.not_running
    caplog.clear()
    for _ in range(2):
        view = await watcher.round(view, window)
    signalling = [r for r in caplog.records if "signalling" in r.getMessage()]
    assert signalling, "the trade without workflow is no longer signalled"
    assert all(r.levelno == logging.DEBUG for r in signalling), \
        [(r.levelname, r.getMessage()) for r in signalling]
