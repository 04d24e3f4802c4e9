"""The account watcher's risk duties on real parts (the paper exchange over HTTP, PostgreSQL,
trades running in a real worker): the daily loss latch on a price move, and the stops it sends
every round for the trading states (docs/design.md#risk). The tests drive the watcher's rounds
themselves and count them."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select, text
from temporalio.client import WorkflowHandle

from activities.daily_loss import LATCH_ACTOR
from activities.risk import RiskBook
from activities.watcher import AccountView, FillWindow, WatcherActivities
from db.models import Incident
from tests.workflows.harness import Harness, strategy, until
from trading.risk import ACCOUNT, RiskLimits
from trading.types import EntryType, IncidentPolicy, TradeStatus, TradingState
from webhook.app import create_app
from workflows.contract import Sizing
from workflows.messages import TradeMessages

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
HOUR = strategy(tracking_interval_s=3600)
TOKEN = "test-admin-token-risk-latch-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
RISK_TABLES = "TRUNCATE incident, risk_state, risk_event, risk_day"


class Watch:
    """The account watcher's rounds, one call at a time, counted."""

    def __init__(self, h: Harness, **options: Any) -> None:
        self.watcher = WatcherActivities(h.exchange, h.sessionmaker, h.client,
                                         settle_s=Decimal(10), policy=IncidentPolicy.REPORT,
                                         **options)
        self.before: AccountView | None = None
        self.window = FillWindow()
        self.count = 0

    async def round(self) -> None:
        self.before = await self.watcher.round(self.before, self.window)
        self.count += 1


@pytest_asyncio.fixture(loop_scope="session")
async def h(harness: Harness) -> AsyncIterator[Harness]:
    """The harness without incidents or trading states; none is left for the tests after."""
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(text(RISK_TABLES))
    await harness.paper.admin.set_price(BTC, "95000")
    yield harness
    async with harness.sessionmaker() as session, session.begin():
        await session.execute(text(RISK_TABLES))


@pytest_asyncio.fixture(loop_scope="session")
async def api(h: Harness, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = h.settings.model_copy(update={"admin_token": SecretStr(TOKEN), "fast_path": False,
                                             "state_dir": tmp_path,
                                             "incident_policy": IncidentPolicy.REPORT})
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tw") as http:
            yield http


async def account_state(h: Harness) -> tuple[str, bool, str]:
    st = (await RiskBook(h.sessionmaker).states())[ACCOUNT]
    return st.state.value, st.latched, st.changed_by


async def daily_incidents(h: Harness) -> list[Incident]:
    async with h.sessionmaker() as session:
        return list((await session.scalars(
            select(Incident).where(Incident.kind == "daily_loss").order_by(Incident.id))).all())


async def until_latched(h: Harness, watch: Watch, within: int) -> int:
    """Rounds until the account is latched; fails past `within` rounds."""
    start = watch.count
    while (await account_state(h))[0] != "HALTED":
        assert watch.count - start < within, f"not latched within {within} watcher rounds"
        await watch.round()
    return watch.count - start


async def test_a_price_move_that_breaches_the_daily_loss_latches_halted_within_two_rounds(
    h: Harness, api: httpx.AsyncClient
) -> None:
    watch = Watch(h, account_limits=RiskLimits(daily_loss_usdt=Decimal(5)))
    trade = await h.trade(sizing=Sizing(size=QTY), strat=HOUR)
    await h.until_state(trade, lambda s: s.status is TradeStatus.TRACKING
                        and s.filled_qty == QTY, "the trade tracks its entry")
    for _ in range(2):  # the entry's fee and the spread: about −0.57 USDT, under the limit
        await watch.round()
    assert await account_state(h) == ("ACTIVE", False, "")

    await h.paper.admin.set_price(BTC, "94000")  # −10 USDT on 0.01 BTC
    assert await until_latched(h, watch, within=2) <= 2
    assert await account_state(h) == ("HALTED", True, LATCH_ACTOR)
    await watch.round()  # the ownership audit leaves the latch's incident alone
    [row] = await daily_incidents(h)
    assert (row.status, row.symbol) == ("open", "*")
    assert row.detail.startswith("the account is latched HALTED: daily_loss_usdt of the account "
                                 "is 5: today's PnL is -10.")
    health = await api.get("/healthz", headers=AUTH)
    body = health.json()
    assert health.status_code == 200 and body["status"] == "degraded"  # exits must come in
    assert (body["risk"], body["incidents"]) == ({"account": "HALTED"}, 1)
    assert body["details"]["risk"]["detail"].startswith(
        "account HALTED (latched) by daily-loss-latch: daily_loss_usdt of the account is 5")
    assert f"#{row.id} daily_loss *" in body["details"]["incidents"]["detail"]
    assert (await api.get("/healthz")).json() == {"status": "up"}  # anonymous: up/down only
    st = await h.state(trade)
    assert st.status is TradeStatus.TRACKING  # a halt without flatten keeps what it holds

    # The operator resumes: the loss so far is acknowledged, the incident resolved.
    await RiskBook(h.sessionmaker).set_state(ACCOUNT, TradingState.ACTIVE, actor="alice",
                                             reason="carry on")
    for _ in range(3):
        await watch.round()
    assert await account_state(h) == ("ACTIVE", False, "alice")
    [resolved] = await daily_incidents(h)
    assert (resolved.status, resolved.resolution) == (
        "resolved", "the account was set ACTIVE by alice: carry on")
    body = (await api.get("/healthz", headers=AUTH)).json()
    assert (body["status"], body["risk"], body["incidents"]) == ("ok", {"account": "ACTIVE"}, 0)

    await h.paper.admin.set_price(BTC, "93500")  # the loss grows beyond the acknowledged one
    assert await until_latched(h, watch, within=2) <= 2
    assert [i.status for i in await daily_incidents(h)] == ["resolved", "open"]


async def test_a_halt_nobody_signalled_stops_a_resting_entry_within_a_round(h: Harness) -> None:
    """The watcher's backstop: a state set directly in the book (no signal sent with it, as if
    the kill switch's own signals were lost) reaches the entering trade from the next round."""
    watch = Watch(h)
    trade = await h.trade(entry_type=EntryType.LIMIT, reference_price=Decimal("90000"),
                          sizing=Sizing(size=QTY), strat=HOUR)
    await h.until_state(trade, lambda s: bool(s.open_orders), "the limit entry rests")
    await watch.round()
    assert (await h.state(trade)).status is TradeStatus.ENTERING  # ACTIVE: nothing sent
    await RiskBook(h.sessionmaker).set_state(ACCOUNT, TradingState.HALTED, actor="test",
                                             reason="no signal sent")
    await watch.round()
    result = await h.result(trade)  # no more rounds: that one round's stop ended it
    assert result.status is TradeStatus.CANCELLED and watch.count == 2
    warnings = (await h.state(trade)).warnings
    assert "risk: account HALTED (test: no signal sent)" in warnings
    assert await h.exchange.pending_orders(symbol=BTC) == []


async def cancels(handle: WorkflowHandle) -> list[dict[str, Any]]:
    """The `cancel` signals in the workflow's history, their payloads as sent."""
    history = await handle.fetch_history()
    out = []
    for event in history.events:
        if event.HasField("workflow_execution_signaled_event_attributes"):
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name == TradeMessages.CANCEL:
                out.append(json.loads(attrs.input.payloads[0].data))
    return out


async def test_a_stop_is_sent_once_per_state_and_again_after_a_restart(h: Harness) -> None:
    """A trade whose workflow takes no task (its task queue has no worker) keeps every signal in
    its history: the same stop is not sent every round; a watcher that restarts sends it again,
    and so does a change of state."""
    idle = dataclasses.replace(h, task_queue=f"nobody-{uuid.uuid4().hex[:8]}", started=[])
    handle = await idle.trade(sizing=Sizing(size=QTY), strat=HOUR)
    try:
        book = RiskBook(h.sessionmaker)
        await book.set_state(ACCOUNT, TradingState.HALTED, actor="test", reason="one")
        watch = Watch(h)
        for _ in range(3):
            await watch.round()
        assert await cancels(handle) == [
            {"flatten": False, "reason": "risk: account HALTED (test: one)"}]

        restarted = Watch(h)
        await restarted.round()
        await restarted.round()
        assert len(await cancels(handle)) == 2

        await book.set_state(ACCOUNT, TradingState.REDUCE_ONLY, actor="test", reason="two")
        await restarted.round()
        await restarted.round()
        assert (await cancels(handle))[2:] == [
            {"flatten": False, "reason": "risk: account REDUCE_ONLY (test: two)"}]

        await book.set_state(ACCOUNT, TradingState.ACTIVE, actor="test", reason="over")
        await restarted.round()
        assert len(await cancels(handle)) == 3
    finally:
        await handle.terminate("test finished")


async def test_the_watcher_the_worker_runs_latches_the_account(h: Harness) -> None:
    """As deployed: the worker's watcher (AccountWatcherWorkflow) with the account's limits from
    the settings (worker.watcher_activities)."""
    from worker import Deps, build_worker, start_watcher

    settings = h.settings.model_copy(update={
        "task_queue": f"tw-latch-{uuid.uuid4().hex[:8]}",
        "risk_daily_loss_usdt": Decimal(5), "risk_latch_state": TradingState.REDUCE_ONLY})
    deps = Deps(exchange=h.exchange, sessionmaker=h.sessionmaker, temporal=h.client)
    trade = await h.trade(sizing=Sizing(size=QTY), strat=HOUR)
    await h.until_state(trade, lambda s: s.status is TradeStatus.TRACKING, "tracking")
    await h.paper.admin.set_price(BTC, "94000")
    async with build_worker(h.client, settings, deps, task_queue=settings.task_queue):
        wid = await start_watcher(h.client, settings, task_queue=settings.task_queue)
        try:
            async def latched() -> bool:
                return await account_state(h) == ("REDUCE_ONLY", True, LATCH_ACTOR)

            await until(latched, "the worker's watcher latches the account REDUCE_ONLY")
        finally:
            await h.client.get_workflow_handle(wid).terminate("test finished")
