"""The kill switch on real trades (docs/design.md#risk): the webhook app on the harness's
database and task queue (its `POST /risk/*` is the operator's switch, its responder the
account's incident policy), trades running in a real worker, the paper exchange over HTTP."""

from __future__ import annotations

import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest_asyncio
from pydantic import SecretStr
from sqlalchemy import select, text

from db.models import Incident, Trade
from tests.webhook.conftest import Strat, Webhook
from tests.workflows.harness import Harness, strategy, until
from tests.workflows.test_incidents import Watch, buy_by_hand, incidents
from trading.types import EntryType, IncidentPolicy, Intent, OrderStatus, PositionSide, TradeStatus
from webhook import strategies
from webhook.app import create_app
from webhook.auth import server_key
from webhook.schemas import render_alert
from workflows.contract import Sizing

BTC, ETH, SOL = "BTCUSDT", "ETHUSDT", "SOLUSDT"
QTY = Decimal("0.0100")
TOKEN = "test-admin-token-risk-switch-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
HOUR = strategy(tracking_interval_s=3600)


@pytest_asyncio.fixture(loop_scope="session")
async def h(harness: Harness) -> AsyncIterator[Harness]:
    """The harness with every scope ACTIVE and no incident, before and after."""
    await _clean(harness)
    await harness.paper.admin.set_price(BTC, "95000")
    await harness.paper.admin.set_price(ETH, "3000")
    yield harness
    await harness.paper.admin.freeze(BTC, frozen=False)
    await _stop_webhook_trades(harness)
    await _clean(harness)


async def _clean(h: Harness) -> None:
    async with h.sessionmaker() as session, session.begin():
        await session.execute(text("TRUNCATE incident, risk_state"))


async def _stop_webhook_trades(h: Harness) -> None:
    """The trades the webhook started (the harness stops only its own)."""
    async with h.sessionmaker() as session:
        ids = (await session.scalars(select(Trade.workflow_id))).all()
    for wid in ids:
        try:
            await h.client.get_workflow_handle(wid).terminate("test finished")
        except Exception:  # noqa: BLE001 - already ended
            pass


@asynccontextmanager
async def webhook(h: Harness, tmp_path: Path,
                  policy: IncidentPolicy = IncidentPolicy.PROTECT) -> AsyncIterator[httpx.AsyncClient]:
    settings = h.settings.model_copy(update={
        "admin_token": SecretStr(TOKEN), "fast_path": False, "state_dir": tmp_path,
        "incident_policy": policy,
    })
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://tw") as http:
            yield http


async def switch(api: httpx.AsyncClient, verb: str, **body: Any) -> dict[str, Any]:
    r = await api.post(f"/risk/{verb}", json=body, headers=AUTH)
    assert r.status_code == 200, r.text
    return r.json()


def entry_prices(st: Any) -> list[Decimal]:
    return [o.price for o in st.open_orders if o.leg == "entry"]


async def test_a_halt_stops_a_chase_before_its_next_reprice(h: Harness, tmp_path: Path) -> None:
    # Only the price this test sets moves the book: a random step could re-price the chase
    # before the halt is sent.
    await h.paper.admin.freeze(BTC)
    handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY),
                           reference_price=Decimal("95000"), sl=Decimal("93000"))
    await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("94999.9")],
                        "a post-only buy resting at the best bid")
    # The claim is about what follows the halt: on a loaded machine the chase may already have
    # re-priced once (a post-only order the paper answered with a refusal), which is no fault.
    halted_ns = time.time_ns()
    async with webhook(h, tmp_path) as api:
        done = await switch(api, "halt", reason="stop everything")
    assert (done["signalled"], done["undelivered"]) == (1, [])
    await h.paper.admin.set_price(BTC, "95010")  # what would make the chase re-price
    result = await h.result(handle)
    assert result.status is TradeStatus.CANCELLED and result.filled_qty == 0
    st = await h.state(handle)  # the trade's details in the Temporal UI say why
    assert any("risk: account HALTED" in w and "stop everything" in w for w in st.warnings)
    assert await h.place_requests(since_ns=halted_ns) == []  # never re-priced after the halt
    entries = [o for o in await h.orders(result.trade_id) if o.leg == "entry"]
    assert entries and all(OrderStatus(o.status).is_terminal for o in entries), entries
    assert entries[-1].status == OrderStatus.CANCELED  # the resting order the halt cancelled
    assert not await h.exchange.pending_orders(BTC)


async def flat(h: Harness) -> bool:
    return not [p for p in await h.exchange.pending_positions() if p.qty > 0]


async def test_halt_with_flatten_leaves_the_account_flat_and_every_trade_ended_with_its_pnl(
    h: Harness, tmp_path: Path
) -> None:
    """Two protected trades and, once they are closed, quantity no trade owns: the trades close
    through their own close path; the unowned quantity is flattened although the configured
    policy is `protect`, because the account is HALTED with flatten."""
    long = await h.trade(sizing=Sizing(size=QTY), strat=HOUR, sl_pct=Decimal("2"))
    short = await h.trade(symbol=ETH, intent=Intent.OPEN_SHORT, sizing=Sizing(size=Decimal("0.1")),
                          strat=HOUR, tp_pct=Decimal("2"))
    for handle in (long, short):
        await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                            and s.protection.order_id is not None, "tracking and protected")
    await h.paper.admin.set_price(BTC, "95100")
    await h.paper.admin.set_price(ETH, "2990")
    watch = Watch(h, settle_s="1")
    async with webhook(h, tmp_path, IncidentPolicy.PROTECT) as api:
        done = await switch(api, "halt", flatten=True, reason="flat now")
        assert (done["signalled"], done["state"]["flatten"]) == (2, True)
        for handle in (long, short):
            result = await h.result(handle)
            # A cancel with flatten ends a trade CANCELLED, what it filled closed.
            assert result.status is TradeStatus.CANCELLED
            assert result.closed_qty == result.filled_qty > 0
        rows = [await h.trade_row(handle) for handle in (long, short)]
        for row in rows:
            assert row.closed_at is not None and row.fees > 0
            assert row.avg_entry_price is not None and row.avg_exit_price is not None
            move = row.avg_exit_price - row.avg_entry_price
            sign = 1 if row.side == PositionSide.LONG.value else -1
            assert row.realized_pnl == sign * row.closed_qty * move != 0
        assert await flat(h)

        await buy_by_hand(h)  # after the halt: what no trade owns
        row = await watch.until(lambda: _open_unowned(h), "an unowned-quantity incident")

        async def flattened() -> Trade | None:
            async with h.sessionmaker() as session:
                trade = await session.scalar(select(Trade).where(
                    Trade.workflow_id.like(f"adopt-{row.id}-%")))
            return trade if trade is not None and trade.status == TradeStatus.CLOSED else None

        adopted = await until(flattened, "the policy flattens it")
        assert adopted.closed_qty == QTY and adopted.realized_pnl is not None
        answered = next(r for r in await incidents(h) if r.id == row.id)
        policy = [a for a in answered.actions if a["by"] == "policy"]
        assert policy[0]["action"] == "flatten"
        assert "policy flatten (the account is HALTED with flatten)" in policy[0]["note"]
        await until(lambda: flat(h), "the account is flat")
    assert not await h.exchange.pending_orders(BTC) and not await h.exchange.pending_orders(ETH)


async def _open_unowned(h: Harness) -> Incident | None:
    rows = [r for r in await incidents(h) if r.kind == "unowned_quantity" and r.status == "open"]
    return rows[0] if rows else None


async def add_strategy(h: Harness, tmp_path: Path, **params: Any) -> Strat:
    settings = h.settings.model_copy(update={"state_dir": tmp_path})
    name = f"r{uuid.uuid4().hex[:10]}"
    row, secret = await strategies.add(h.sessionmaker, server_key(settings), name,
                                       params={"tracking_interval_s": 2, **params})
    return Strat(row.id, name, secret)


async def alert(api: httpx.AsyncClient, strat: Strat, **fields: Any) -> httpx.Response:
    body = render_alert(Webhook.alert(strat, **fields)).encode()
    return await api.post("/webhook/tradingview", content=body,
                          headers={"Content-Type": "application/json"})


async def ended(h: Harness, trade_id: int) -> Trade:
    async def final() -> Trade | None:
        row = await h.trade_row(trade_id)
        return row if TradeStatus(row.status).is_final else None

    return await until(final, f"trade #{trade_id} ends")


async def test_reduce_only_lets_an_exit_alert_and_a_take_profit_through_but_refuses_an_open(
    h: Harness, tmp_path: Path
) -> None:
    strat = await add_strategy(h, tmp_path)
    async with webhook(h, tmp_path) as api:
        btc = await alert(api, strat, sl=Decimal("90000"))
        eth = await alert(api, strat, ticker="ETHUSDT.P", size=Decimal("0.1"),
                          tp=Decimal("3100"))
        assert (btc.status_code, eth.status_code) == (202, 202), (btc.text, eth.text)
        trades = {r.json()["trade_id"]: r.json()["workflow_id"] for r in (btc, eth)}
        for wid in trades.values():
            handle = h.client.get_workflow_handle(wid)
            await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                                and s.protection.order_id is not None, "tracking and protected")
        await switch(api, "reduce-only", strategy=strat.name, reason="wind down")

        opened = await alert(api, strat, ticker="SOLUSDT.P", size=Decimal("1"))
        assert opened.status_code == 422 and opened.json()["outcome"] == "REFUSED"
        assert f"strategy '{strat.name}' is REDUCE_ONLY" in opened.json()["reason"]

        exit_ = await alert(api, strat, action="sell", market_position="flat",
                            prev_market_position="long", size=None)
        assert exit_.status_code == 202, exit_.text
        closed = await ended(h, btc.json()["trade_id"])
        assert closed.status == TradeStatus.CLOSED and closed.closed_qty == QTY

        await h.paper.admin.set_price(ETH, "3150")  # through the take-profit
        took = await ended(h, eth.json()["trade_id"])
        assert took.status == TradeStatus.CLOSED and took.closed_qty == Decimal("0.1")
        assert took.avg_exit_price is not None and took.avg_exit_price >= Decimal("3100")
    assert await flat(h)
    async with h.sessionmaker() as session:
        mine = (await session.scalars(select(Trade).where(Trade.strategy_id == strat.id))).all()
    assert sorted(t.symbol for t in mine) == [BTC, ETH]  # the refused open made no trade
