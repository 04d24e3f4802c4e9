"""Restarts with real processes: a worker SIGKILLed mid-chase, a worker killed right after its
local activity sent the first order, and the Temporal server itself restarted while a trade is
tracking. Every trade ends with exactly its quantity and no order placed twice."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

import pytest
import pytest_asyncio
from temporalio.client import Client

from tests.support.paper import PaperExchange
from tests.workflows.conftest import RATE_SCALE, running_harness
from tests.workflows.harness import Harness, strategy, until
from tests.workflows.processes import DevServer, WorkerProcess, worker_env
from trading.types import EntryType, OrderStatus, TradeStatus
from workflows.contract import Sizing
from workflows.trade import TradeWorkflow
from workflows.watcher import watcher_workflow_id

pytestmark = pytest.mark.slow
BTC = "BTCUSDT"
QTY = Decimal("0.0100")


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


def entry_prices(st) -> list[Decimal]:
    return [o.price for o in st.open_orders if o.leg == "entry"]


def _worker(h: Harness, wf_db, client_target: str, tmp_path: Path) -> WorkerProcess:
    env = worker_env(db_url=wf_db[0], temporal=client_target, task_queue=h.task_queue,
                     exchange_url=h.paper.base_url, api_key=h.paper.api_key,
                     api_secret=h.paper.api_secret, budget_scale=str(RATE_SCALE))
    return WorkerProcess(env=env, workdir=tmp_path)


@pytest_asyncio.fixture(loop_scope="session")
async def process_harness(
    temporal_client: Client, wf_paper: PaperExchange, wf_db, task_queue: str
) -> AsyncIterator[Harness]:
    async with running_harness(temporal_client, wf_paper, wf_db, task_queue,
                               in_process_worker=False) as h:
        yield h
        await _stop_watcher(h)


async def _stop_watcher(h: Harness) -> None:
    try:
        await h.client.get_workflow_handle(watcher_workflow_id(h.task_queue)).terminate("done")
    except Exception:  # noqa: BLE001 - not started
        pass


async def _api_orders(h: Harness) -> list[dict]:
    return [o for o in (await h.paper.admin.state())["orders"] if o["source"] == "api"]


async def test_worker_killed_mid_chase_the_next_one_finishes_it_exactly(
    process_harness: Harness, wf_db, tmp_path: Path
) -> None:
    h = process_harness
    target = h.client.service_client.config.target_host
    first = _worker(h, wf_db, target, tmp_path)
    second = _worker(h, wf_db, target, tmp_path)
    try:
        await first.start(h.client, h.task_queue)
        await h.paper.admin.set_price(BTC, "95000")
        handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY),
                               reference_price=Decimal("95000"), sl=Decimal("90000"))
        await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("94999.9")], "resting")
        first.kill()
        await h.paper.admin.set_price(BTC, "95010")  # the chase must re-price, with no worker
        await second.start(h.client, h.task_queue)
        await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("95009.9")],
                            "re-priced by the new worker")
        await h.paper.admin.set_price(BTC, "95005")
        st = await h.until_state(handle, protected, "filled and protected")
        assert st.filled_qty == QTY and await h.position_qty() == QTY
        orders = await _api_orders(h)
        client_ids = [o["clientId"] for o in orders]
        assert len(client_ids) == len(set(client_ids)) == 2, orders
        assert sorted(o["status"] for o in orders) == ["CANCELED", "FILLED"]
        assert sum(Decimal(o["tradeQty"]) for o in orders) == QTY
    finally:
        first.stop()
        second.stop()


async def test_worker_killed_mid_sub_second_chase_the_retry_resumes_it(
    process_harness: Harness, wf_db, tmp_path: Path
) -> None:
    """The sub-second chase runs in one heartbeating activity: its retry on the next worker
    confirms the orders of the dead attempt before it places anything."""
    h = process_harness
    target = h.client.service_client.config.target_host
    first = _worker(h, wf_db, target, tmp_path)
    second = _worker(h, wf_db, target, tmp_path)
    try:
        await first.start(h.client, h.task_queue)
        await h.paper.admin.set_price(BTC, "95000")
        handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY),
                               reference_price=Decimal("95000"), sl=Decimal("90000"),
                               strat=strategy(chase_interval_s=Decimal("0.2")))
        await until(lambda: _resting_at(h, Decimal("94999.9")), "resting")
        first.kill()
        await h.paper.admin.set_price(BTC, "95010")
        await second.start(h.client, h.task_queue)
        await until(lambda: _resting_at(h, Decimal("95009.9")), "re-priced by the retry", 60)
        await h.paper.admin.set_price(BTC, "95005")
        st = await h.until_state(handle, protected, "filled and protected")
        assert st.filled_qty == QTY and await h.position_qty() == QTY
        orders = await _api_orders(h)
        assert len({o["clientId"] for o in orders}) == len(orders) == 2, orders
        assert sorted(o["status"] for o in orders) == ["CANCELED", "FILLED"]
    finally:
        first.stop()
        second.stop()


async def _resting_at(h: Harness, price: Decimal) -> bool:
    return [o.price for o in await h.exchange.pending_orders(BTC)] == [price]


async def test_killed_after_the_local_activity_sent_no_second_order(
    process_harness: Harness, wf_db, tmp_path: Path
) -> None:
    h = process_harness
    target = h.client.service_client.config.target_host
    first = _worker(h, wf_db, target, tmp_path)
    second = _worker(h, wf_db, target, tmp_path)
    try:
        await first.start(h.client, h.task_queue)
        await h.paper.admin.set_price(BTC, "95000")
        # The exchange executes the first placement and withholds its answer: the worker that
        # sent it (as a local activity: nothing of it is in the history yet) is then killed.
        await h.paper.admin.faults(drop_response={"target": "order", "count": 1, "mode": "hang"})
        handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"),
                               start={"task_timeout": timedelta(seconds=3)})
        await until(lambda: _api_orders(h), "the order reached the exchange")
        first.kill()
        await second.start(h.client, h.task_queue)
        st = await h.until_state(handle, protected, "adopted and protected")
        assert st.filled_qty == QTY and await h.position_qty() == QTY
        assert len(await _api_orders(h)) == 1
        [entry] = [o for o in await h.orders(st.trade_id) if o.leg == "entry"]
        assert entry.status == OrderStatus.FILLED
    finally:
        first.stop()
        second.stop()


async def test_temporal_server_restart_while_tracking_resumes_and_completes(
    temporal_client: Client, wf_paper: PaperExchange, wf_db, task_queue: str, tmp_path: Path
) -> None:
    server = DevServer(workdir=tmp_path)
    client = await server.start()
    worker: WorkerProcess | None = None
    try:
        async with running_harness(client, wf_paper, wf_db, task_queue,
                                   in_process_worker=False) as h:
            worker = _worker(h, wf_db, server.target, tmp_path)
            await worker.start(client, task_queue)
            await h.paper.admin.set_price(BTC, "95000")
            handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("96000"))
            await h.until_state(handle, protected, "tracking")
            server.stop()
            await h.paper.admin.set_price(BTC, "96100")  # the TP fires while Temporal is down
            h.client = await server.start()
            result = await h.result(h.client.get_workflow_handle_for(TradeWorkflow.run, handle.id),
                                  timeout_s=90)
            assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
            assert (await h.trade_row(handle)).status == "CLOSED"
            await _stop_watcher(h)
            h.started.clear()
    finally:
        if worker is not None:
            worker.stop()
        server.stop()
