"""Alerts all the way to the paper exchange: the webhook with its fast-path worker (eager start,
first placement in-process), a full worker for everything else, the real TradeWorkflow."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest_asyncio
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError, RPCStatusCode

from db.migrate import upgrade
from db.session import make_engine, make_sessionmaker
from pair_catalog import sync_pairs
from settings import Settings
from tests.support.paper import PaperExchange
from tests.support.postgres import PostgresServer
from tests.support.temporal import temporal_cli
from tests.support.waiting import eventually
from trading.types import PositionMode, SignalOutcome, TradeStatus
from webhook import strategies
from webhook.app import create_app
from webhook.outbox import Outbox
from wiring import exchange_client
from worker import Deps, main_workers
from workflows import search_attributes as sa
from workflows.contract import TradeResult
from workflows.messages import CancelRequest
from workflows.state import TradeState
from workflows.trade import TradeWorkflow

from .conftest import TOKEN, Webhook, make_settings
from .test_ack_path import _lose_answers

AUTH = {"Authorization": f"Bearer {TOKEN}"}
PATIENCE_S = 60  # a generous bound for a condition that is polled, never a timing assertion


@pytest_asyncio.fixture(scope="module")
async def e2e_db(
    pg_server: PostgresServer, paper_exchange: PaperExchange
) -> AsyncIterator[tuple[str, async_sessionmaker[AsyncSession]]]:
    """A migrated database of this module's own. The session's database holds what the other
    webhook tests leave: alerts answered NOT_STARTED, trades PENDING on task queues no worker
    polls. This module's webhook has a worker, so its outbox would start those on the paper
    account in the middle of a test (it did: two foreign BTCUSDT longs beside a reverse)."""
    name = pg_server.create_database("tw_e2e")
    url = pg_server.url_for(name)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    sessionmaker = make_sessionmaker(engine)
    try:
        async with exchange_client(paper_exchange.settings) as client:
            await sync_pairs(client, sessionmaker)
        yield url, sessionmaker
    finally:
        await engine.dispose()
        pg_server.drop_database(name)


@pytest_asyncio.fixture
async def trading(
    temporal_env,
    paper: PaperExchange,
    e2e_db: tuple[str, async_sessionmaker[AsyncSession]],
    temporal_client: Client,
    tmp_path,
) -> AsyncIterator[Webhook]:
    db_url, sessionmaker = e2e_db
    # The paper exchange restarts its ids on every reset: rows of an earlier test would share
    # them (fills deduplicated away, positions mixed up), and a trade an earlier test left open
    # would refuse or join this one's entries.
    async with sessionmaker.begin() as session:
        await session.execute(text('TRUNCATE trade, "order", fill, position CASCADE'))
    settings: Settings = make_settings(temporal_env, paper, tmp_path, fast_path=True)
    exchange = exchange_client(settings)
    deps = Deps(exchange=exchange, sessionmaker=sessionmaker, temporal=temporal_client)
    app = create_app(settings, database_url=db_url)
    try:
        async with main_workers(temporal_client, settings, deps), app.router.lifespan_context(app):
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://tw"
            ) as http:
                yield Webhook(http, app, settings, sessionmaker, temporal_client)
    finally:
        await exchange.aclose()


async def _trade_in(webhook: Webhook, trade_id: int, *statuses: TradeStatus) -> Any:
    async def probe() -> Any:
        trade = await webhook.trade(trade_id)
        return trade if trade.status in statuses else None

    return await eventually(
        probe, f"trade #{trade_id} to be {'/'.join(statuses)}", PATIENCE_S, interval_s=0.05
    )


async def test_an_alert_another_module_left_unstarted_is_never_traded_here(
    webhook: Webhook, trading: Webhook
) -> None:
    """test_ack_path leaves alerts answered NOT_STARTED in the session's database, and any
    outbox starts such an alert once it is older than its grace. This module's outbox, whose
    worker trades on the paper account, must never see them."""
    lost = _lose_answers(webhook, forward=False, error=RPCError(
        "unavailable", RPCStatusCode.UNAVAILABLE, b""))
    # Too old to start by the time any outbox's grace has passed (and no `time`, whose whole
    # seconds could make it too old at intake): left behind, it is ended, never opened.
    strat = await webhook.add_strategy(max_alert_age_s=1)
    r = await webhook.post(webhook.alert(strat, time=None))
    assert lost.calls == 1 and r.json()["outcome"] == SignalOutcome.NOT_STARTED.value, r.text
    assert await Outbox(trading.app.state.intake, grace_s=0).sweep() == 0
    assert (await webhook.signal(r.json()["signal_id"])).outcome == SignalOutcome.NOT_STARTED


async def test_open_then_cancel_with_flatten_ends_cancelled_in_temporal(
    trading: Webhook, paper: PaperExchange
) -> None:
    strat = await trading.add_strategy()
    r = await trading.post(
        trading.alert(strat, ticker="BITUNIX:ESPUSDT.P", size=None, size_usdt=Decimal("50"))
    )
    assert r.status_code == 202, r.text
    trade_id, workflow_id = r.json()["trade_id"], r.json()["workflow_id"]
    trade = await _trade_in(trading, trade_id, TradeStatus.TRACKING)
    assert trade.symbol == "ESPUSDT" and trade.filled_qty > 0

    shown = (await trading.http.get(f"/trades/{trade_id}", headers=AUTH)).json()
    assert shown["state"]["status"] == "TRACKING" and shown["state_error"] is None
    assert shown["orders"] and shown["orders"][0]["symbol"] == "ESPUSDT"

    cancel = await trading.http.post(
        f"/trades/{trade_id}/cancel", json={"flatten": True}, headers=AUTH
    )
    assert cancel.status_code == 202
    handle = trading.temporal.get_workflow_handle(workflow_id, result_type=TradeResult)
    result = await asyncio.wait_for(handle.result(), PATIENCE_S)
    assert result.status == TradeStatus.CANCELLED and result.closed_qty == result.filled_qty
    described = await handle.describe()
    assert described.status == WorkflowExecutionStatus.COMPLETED
    assert described.typed_search_attributes.get(sa.TRADE_STATUS) == "CANCELLED"
    assert (await trading.trade(trade_id)).status == TradeStatus.CANCELLED


async def test_reverse_closes_its_own_quantity_then_opens_market_position_size(
    trading: Webhook, paper: PaperExchange
) -> None:
    strat = await trading.add_strategy()
    opened = await trading.post(trading.alert(strat, size=Decimal("0.01")))
    assert opened.status_code == 202, opened.text
    first = await _trade_in(trading, opened.json()["trade_id"], TradeStatus.TRACKING)
    assert first.filled_qty == Decimal("0.01")

    reverse = trading.alert(
        strat,
        action="sell",
        market_position="short",
        prev_market_position="long",
        size=Decimal("0.03"),
        market_position_size=Decimal("0.02"),
    )
    r = await trading.post(reverse)
    assert r.status_code == 202, r.text
    second = await _trade_in(trading, r.json()["trade_id"], TradeStatus.TRACKING)
    closed = await _trade_in(trading, first.id, TradeStatus.CLOSED)
    assert closed.closed_qty == Decimal("0.01")
    assert (second.side, second.filled_qty) == ("SHORT", Decimal("0.02"))  # never 0.03
    async with exchange_client(trading.settings) as client:
        positions = await client.pending_positions(symbol="BTCUSDT")
    assert [(p.side.value, p.qty) for p in positions] == [("SHORT", Decimal("0.02"))]

    close = trading.alert(strat, action="buy", market_position="flat", prev_market_position="short")
    assert (await trading.post(close)).status_code == 202
    done = await _trade_in(trading, second.id, TradeStatus.CLOSED)
    assert done.closed_qty == Decimal("0.02")


async def test_a_reverse_closes_every_open_trade_it_replaces_before_opening(
    trading: Webhook, paper: PaperExchange
) -> None:
    """Pyramiding (review finding 11): two longs of the strategy are open when the reverse
    comes. The short opens only once both have closed, never beside the older one, whose
    limit exit rests until the test moves the price (hedge mode, where it could open)."""
    await paper.admin.set_price("BTCUSDT", "95000")
    async with exchange_client(trading.settings) as client:
        await client.change_position_mode(PositionMode.HEDGE)
    strat = await trading.add_strategy(exit_entry_type="limit")
    older = await trading.post(trading.alert(strat, size=Decimal("0.01")))
    await _trade_in(trading, older.json()["trade_id"], TradeStatus.TRACKING)
    # Trades keep the strategy they started with: only the newer long exits at market.
    await strategies.update(trading.sessionmaker, strat.name, {"exit_entry_type": "market"})
    newer = await trading.post(trading.alert(strat, size=Decimal("0.01")))
    await _trade_in(trading, newer.json()["trade_id"], TradeStatus.TRACKING)

    reverse = trading.alert(
        strat,
        action="sell",
        market_position="short",
        prev_market_position="long",
        size=Decimal("0.03"),
        market_position_size=Decimal("0.01"),
    )
    r = await trading.post(reverse)
    assert r.status_code == 202, r.text
    await _trade_in(trading, newer.json()["trade_id"], TradeStatus.CLOSED)
    handle = trading.temporal.get_workflow_handle(r.json()["workflow_id"])

    async def settled() -> TradeState | None:
        """The reverse's state once it either waits for the older long alone or went on."""
        st = await handle.query(TradeWorkflow.state)
        waiting = st.phase == f"waiting for {older.json()['workflow_id']} to close first"
        return st if waiting or st.status is not TradeStatus.PENDING else None

    st = await eventually(settled, "the reverse waiting for the older long", PATIENCE_S)
    assert (st.status, st.filled_qty) == (TradeStatus.PENDING, 0), st
    older_row = await trading.trade(older.json()["trade_id"])
    assert older_row.status == TradeStatus.CLOSING

    await paper.admin.set_price("BTCUSDT", "95001")  # the older long's resting exit fills
    await _trade_in(trading, older.json()["trade_id"], TradeStatus.CLOSED)
    second = await _trade_in(trading, r.json()["trade_id"], TradeStatus.TRACKING)
    assert (second.side, second.filled_qty) == ("SHORT", Decimal("0.01"))
    async with exchange_client(trading.settings) as client:
        positions = await client.pending_positions(symbol="BTCUSDT")
    assert [(p.side.value, p.qty) for p in positions] == [("SHORT", Decimal("0.01"))]
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    await _trade_in(trading, r.json()["trade_id"], TradeStatus.CANCELLED)


async def test_cancel_through_the_temporal_cli_as_the_readme_shows(
    trading: Webhook, temporal_env
) -> None:
    strat = await trading.add_strategy()
    r = await trading.post(trading.alert(strat, size=Decimal("0.01")))
    trade_id, workflow_id = r.json()["trade_id"], r.json()["workflow_id"]
    await _trade_in(trading, trade_id, TradeStatus.TRACKING)
    address = temporal_env.client.service_client.config.target_host
    process = await asyncio.create_subprocess_exec(
        temporal_cli(),
        "workflow",
        "signal",
        "--address",
        address,
        "--workflow-id",
        workflow_id,
        "--name",
        "cancel",
        "--input",
        '{"flatten": true}',
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    output, _ = await process.communicate()
    assert process.returncode == 0, output.decode()
    handle = trading.temporal.get_workflow_handle(workflow_id, result_type=TradeResult)
    result = await asyncio.wait_for(handle.result(), PATIENCE_S)
    assert result.status == TradeStatus.CANCELLED and result.closed_qty == Decimal("0.01")


async def test_an_exit_for_a_trade_whose_workflow_is_gone_resumes_it_and_closes(
    trading: Webhook, paper: PaperExchange
) -> None:
    """The trade's row is open but its workflow was terminated: the exit is never answered
    "nothing to close" while the trade owns quantity. A new run of its workflow takes the exit
    with its start (docs/design.md#resuming-a-trade)."""
    strat = await trading.add_strategy()
    before = await _long_sol(trading)  # a symbol of its own: other tests trade BTCUSDT
    opened = await trading.post(trading.alert(strat, ticker="BITUNIX:SOLUSDT.P", size=Decimal("0.01")))
    assert opened.status_code == 202, opened.text
    trade_id, workflow_id = opened.json()["trade_id"], opened.json()["workflow_id"]
    # Tracking, with the position it is in recorded (what a resumed run tracks).
    await eventually(lambda: _position_recorded(trading, trade_id), "the position id recorded",
                     PATIENCE_S)
    assert await _long_sol(trading) == before + Decimal("0.01")
    await trading.temporal.get_workflow_handle(workflow_id).terminate("by hand")

    close = trading.alert(strat, ticker="BITUNIX:SOLUSDT.P", action="sell", market_position="flat",
                          prev_market_position="long")
    answer = await trading.post(close)
    assert answer.status_code == 202, answer.text
    assert [c["trade_id"] for c in answer.json()["closing"]] == [trade_id]
    done = await _trade_in(trading, trade_id, TradeStatus.CLOSED)
    assert (done.filled_qty, done.closed_qty) == (Decimal("0.01"), Decimal("0.01"))
    assert await _long_sol(trading) == before  # its own 0.01 closed, nothing else touched


async def _long_sol(trading: Webhook) -> Decimal:
    async with exchange_client(trading.settings) as client:
        positions = await client.pending_positions(symbol="SOLUSDT")
    return sum((p.qty for p in positions if p.side.value == "LONG"), Decimal(0))


async def _position_recorded(trading: Webhook, trade_id: int) -> bool:
    trade = await trading.trade(trade_id)
    return trade.status == TradeStatus.TRACKING and trade.position_id is not None


async def test_a_queued_start_runs_its_trade_on_the_main_worker(trading: Webhook) -> None:
    """A start queued behind its answer is a burst's: its trade's first steps go to the main
    worker's task queue, never eagerly to this process's fast path, which owes the answers."""
    trading.app.state.intake.queue_after = -1  # every open answered from its record
    strat = await trading.add_strategy()
    r = await trading.post(trading.alert(strat))
    assert r.status_code == 202 and r.json()["start"] == "queued", r.text
    await _trade_in(trading, r.json()["trade_id"], TradeStatus.TRACKING)
    desc = await trading.temporal.get_workflow_handle(r.json()["workflow_id"]).describe()
    assert desc.task_queue == trading.settings.task_queue
