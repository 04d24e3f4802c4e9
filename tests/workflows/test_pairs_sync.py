"""The worker's pair sync: a Temporal Schedule created idempotently at start (its interval from
TRADEWIRE_PAIRS_SYNC_INTERVAL_S), whose PairsSyncWorkflow re-syncs every pair on a real worker
against the paper exchange over HTTP and PostgreSQL, reports what changed, and replays."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update
from temporalio.client import Client, ScheduleActionStartWorkflow
from temporalio.worker import Replayer

from db.models import TradingPair
from pair_catalog import SyncReport
from tests.support.paper import PaperExchange
from tests.support.waiting import eventually
from tests.workflows.conftest import exchange_client, harness_settings
from tests.workflows.harness import HISTORIES, SAVE_HISTORIES
from worker import Deps, build_worker, ensure_pairs_schedule
from workflows.converter import DATA_CONVERTER
from workflows.pairs_sync import PairsSyncWorkflow, pairs_schedule_id


@pytest.fixture
async def queue(temporal_client: Client) -> AsyncIterator[str]:
    name = f"tw-pairs-{uuid.uuid4().hex[:10]}"
    yield name
    try:
        await temporal_client.get_schedule_handle(pairs_schedule_id(name)).delete()
    except Exception:  # noqa: BLE001 - a test that failed before creating it leaves none
        pass


async def intervals(client: Client, queue: str) -> list[timedelta]:
    described = await client.get_schedule_handle(pairs_schedule_id(queue)).describe()
    return [i.every for i in described.schedule.spec.intervals]


async def test_the_schedule_is_created_once_and_follows_the_setting(
    temporal_client: Client, temporal_env, wf_paper: PaperExchange, wf_db, queue: str
) -> None:
    target = temporal_env.client.service_client.config.target_host
    settings = harness_settings(wf_paper, wf_db[0], queue, target)
    assert settings.pairs_sync_interval_s == 3600  # hourly by default

    assert await ensure_pairs_schedule(temporal_client, settings) == pairs_schedule_id(queue)
    # A second worker (or a restart) finds it and leaves it as it is.
    await ensure_pairs_schedule(temporal_client, settings)
    assert await intervals(temporal_client, queue) == [timedelta(hours=1)]
    described = await temporal_client.get_schedule_handle(pairs_schedule_id(queue)).describe()
    action = described.schedule.action
    assert isinstance(action, ScheduleActionStartWorkflow)
    assert action.workflow == "PairsSyncWorkflow" and action.task_queue == queue

    # A changed TRADEWIRE_PAIRS_SYNC_INTERVAL_S takes effect at the next worker start.
    changed = settings.model_copy(update={"pairs_sync_interval_s": 600})
    await ensure_pairs_schedule(temporal_client, changed)
    assert await intervals(temporal_client, queue) == [timedelta(minutes=10)]


async def test_a_scheduled_run_re_syncs_the_pairs_and_reports_what_changed(
    temporal_client: Client, temporal_env, wf_paper: PaperExchange, wf_db, queue: str
) -> None:
    db_url, sessionmaker = wf_db
    target = temporal_env.client.service_client.config.target_host
    settings = harness_settings(wf_paper, db_url, queue, target)
    # Rules stored earlier that the exchange has since changed.
    async with sessionmaker() as session, session.begin():
        await session.execute(update(TradingPair).where(TradingPair.symbol == "BTCUSDT")
                              .values(min_qty=Decimal("0.5")))
    exchange = exchange_client(wf_paper)
    deps = Deps(exchange=exchange, sessionmaker=sessionmaker, temporal=temporal_client)
    try:
        async with build_worker(temporal_client, settings, deps):
            await ensure_pairs_schedule(temporal_client, settings)
            schedule = temporal_client.get_schedule_handle(pairs_schedule_id(queue))
            await schedule.trigger()  # what the interval does, now

            async def started() -> str | None:
                actions = (await schedule.describe()).info.recent_actions
                return actions[-1].action.workflow_id if actions else None

            workflow_id = await eventually(started, "a scheduled PairsSyncWorkflow run", 30)
            handle = temporal_client.get_workflow_handle(workflow_id, result_type=SyncReport)
            report = await handle.result()
    finally:
        await exchange.aclose()

    assert report.total >= 15 and not report.appeared and not report.disappeared
    assert report.changed == {"BTCUSDT": ["min_qty: 0.5 -> 0.0001"]}, report.changed
    async with sessionmaker() as session:
        btc = await session.get(TradingPair, "BTCUSDT")
    assert btc is not None and btc.min_qty == Decimal("0.0001")

    history = await handle.fetch_history()
    replay = await Replayer(workflows=[PairsSyncWorkflow], data_converter=DATA_CONVERTER
                            ).replay_workflow(history, raise_on_replay_failure=False)
    assert replay.replay_failure is None, replay.replay_failure
    if os.environ.get(SAVE_HISTORIES) == "1":
        (HISTORIES / "pairs_sync.json").write_text(history.to_json())
