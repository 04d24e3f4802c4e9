"""OrderActivities against the paper exchange over HTTP and a real PostgreSQL: the SENDING row,
re-sends that look up first, 30042, 20007, post-only refusals, late sends, cancels."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import pytest_asyncio
from sqlalchemy import select
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contract import OrderRef, OrderRequest
from activities.orders import OrderActivities
from activities.records import Records
from db.migrate import upgrade
from db.models import Order as OrderRow
from db.models import Trade
from db.session import make_engine, make_sessionmaker
from pair_catalog import sync_pairs
from trading.types import Effect, Leg, OrderStatus, OrderType, Side

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sessionmaker(pg_server, paper_exchange) -> AsyncIterator[object]:
    from pydantic import SecretStr

    from exchange.client import BitunixClient

    name = pg_server.create_database("tw_activities")
    url = pg_server.url_for(name)
    await asyncio.to_thread(upgrade, url)
    engine = make_engine(url)
    maker = make_sessionmaker(engine)
    client = BitunixClient(paper_exchange.base_url, paper_exchange.api_key,
                           SecretStr(paper_exchange.api_secret))
    try:
        await sync_pairs(client, maker)
        yield maker
    finally:
        await client.aclose()
        await engine.dispose()
        pg_server.drop_database(name)


@pytest.fixture
async def trade_id(sessionmaker) -> int:
    async with sessionmaker() as session, session.begin():
        row = Trade(workflow_id=f"t-{uuid.uuid4().hex}", symbol=BTC, side="LONG",
                    intent="OPEN_LONG", entry_type="market", status="ENTERING")
        session.add(row)
        await session.flush()
        return row.id


@pytest.fixture
def acts(paper, paper_client, sessionmaker) -> OrderActivities:
    return OrderActivities(paper_client, sessionmaker, lookup_pause_s=0.1)


def request(trade_id: int, **fields) -> OrderRequest:
    base = dict(trade_id=trade_id, client_id=f"TWTEST{uuid.uuid4().hex[:12].upper()}",
                leg=Leg.ENTRY, symbol=BTC, side=Side.BUY, fill_side=Side.BUY,
                order_type=OrderType.MARKET, qty=QTY)
    return OrderRequest(**(base | fields))


async def row(sessionmaker, client_id: str) -> OrderRow:
    async with sessionmaker() as session:
        found = await session.scalar(select(OrderRow).where(OrderRow.client_order_id == client_id))
        assert found is not None
        return found


async def api_orders(paper) -> list[dict]:
    return [o for o in (await paper.admin.state())["orders"] if o["source"] == "api"]


async def test_first_send_commits_the_row_then_records_the_fill(acts, paper, sessionmaker, trade_id) -> None:
    req = request(trade_id)
    snap = await ActivityEnvironment().run(acts.place_order, req)
    assert snap.status is OrderStatus.FILLED and snap.filled_qty == QTY and not snap.adopted
    stored = await row(sessionmaker, req.client_id)
    assert stored.status == "FILLED" and stored.exchange_order_id == snap.order_id
    assert stored.avg_price == Decimal("95000.1") and stored.fee > 0


async def test_resend_of_a_sent_order_adopts_it(acts, paper, sessionmaker, trade_id) -> None:
    req = request(trade_id)
    env = ActivityEnvironment()
    first = await env.run(acts.place_order, req)
    again = await env.run(acts.place_order, req)  # a re-run: the row is there, look it up
    assert again.adopted and again.order_id == first.order_id
    assert len(await api_orders(paper)) == 1


async def test_row_without_a_send_is_sent_once_after_the_lookup(acts, paper, sessionmaker, trade_id) -> None:
    """A crash between committing SENDING and sending: the re-run finds the row, the exchange
    does not know the order (20007, patiently), so it is sent, once."""
    req = request(trade_id)
    await Records(sessionmaker).claim_order(req)
    snap = await ActivityEnvironment().run(acts.place_order, req)
    assert snap.status is OrderStatus.FILLED and not snap.adopted
    assert len(await api_orders(paper)) == 1


async def test_duplicate_client_id_30042_adopts_the_existing_order(acts, paper, paper_client, sessionmaker, trade_id) -> None:
    req = request(trade_id)
    placed = await paper_client.place_order(symbol=BTC, side=Side.BUY, qty=QTY,
                                            order_type=OrderType.MARKET, client_id=req.client_id)
    snap = await ActivityEnvironment().run(acts.place_order, req)  # our row is new: it sends
    assert snap.adopted and snap.order_id == placed.order_id
    assert len(await api_orders(paper)) == 1
    assert any(r["code"] == 30042 for r in await paper.admin.requests())


async def test_order_not_visible_yet_is_looked_up_again(acts, paper, trade_id) -> None:
    await paper.admin.faults(visibility_delay_ms=400)
    snap = await ActivityEnvironment().run(acts.place_order, request(trade_id))
    assert snap.status is OrderStatus.FILLED
    assert any(r["code"] == 20007 for r in await paper.admin.requests())


@pytest.mark.parametrize("mode,status", [("cancel", OrderStatus.CANCELED),
                                         ("reject", OrderStatus.REJECTED)])
async def test_post_only_that_would_take_is_an_answer_not_a_failure(
    acts, paper, sessionmaker, trade_id, mode: str, status: OrderStatus
) -> None:
    await paper.admin.faults(post_only_mode=mode)
    req = request(trade_id, order_type=OrderType.LIMIT, effect=Effect.POST_ONLY,
                  price=Decimal("95000.1"))  # the best ask: a buy there would take
    snap = await ActivityEnvironment().run(acts.place_order, req)
    assert snap.status is status and snap.filled_qty == 0
    assert (await row(sessionmaker, req.client_id)).status == status.value


async def test_late_entry_is_not_sent_after_the_alert_max_age(acts, paper, sessionmaker, trade_id) -> None:
    req = request(trade_id, send_deadline=datetime.now(UTC) - timedelta(seconds=1))
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(acts.place_order, req)
    assert refused.value.type == "AlertTooOld" and refused.value.non_retryable
    assert not await api_orders(paper)
    assert (await row(sessionmaker, req.client_id)).status == "REJECTED"


async def test_late_resend_rechecks_slippage_against_the_alert_price(acts, paper, sessionmaker, trade_id) -> None:
    req = request(trade_id, slippage_anchor=Decimal("94000"), max_slippage_bps=Decimal(50))
    await Records(sessionmaker).claim_order(req)  # an earlier attempt got as far as the row
    with pytest.raises(ApplicationError) as refused:
        await ActivityEnvironment().run(acts.place_order, req)
    assert refused.value.type == "SlippageExceeded" and refused.value.non_retryable
    assert not await api_orders(paper)


async def test_insufficient_margin_fails_fast_with_the_exchange_message(acts, paper, trade_id) -> None:
    with pytest.raises(ApplicationError) as failed:
        await ActivityEnvironment().run(acts.place_order, request(trade_id, qty=Decimal("1000")))
    assert failed.value.type == "InsufficientFunds" and failed.value.non_retryable
    assert "20003" in failed.value.message


async def test_cancel_confirms_terminal_and_reports_a_fill_that_won_the_race(
    acts, paper, sessionmaker, trade_id
) -> None:
    env = ActivityEnvironment()
    resting = request(trade_id, order_type=OrderType.LIMIT, price=Decimal("94000"))
    snap = await env.run(acts.place_order, resting)
    ref = OrderRef(trade_id=trade_id, client_id=resting.client_id, symbol=BTC, order_id=snap.order_id)
    assert (await env.run(acts.cancel_order, ref)).status is OrderStatus.CANCELED

    racing = request(trade_id, order_type=OrderType.LIMIT, price=Decimal("94000"))
    snap = await env.run(acts.place_order, racing)
    await paper.admin.faults(cancel_fill_race=True)
    done = await env.run(acts.cancel_order, OrderRef(trade_id=trade_id, client_id=racing.client_id,
                                                     symbol=BTC, order_id=snap.order_id))
    assert done.status is OrderStatus.FILLED and done.filled_qty == QTY
    assert (await row(sessionmaker, racing.client_id)).filled_qty == QTY
