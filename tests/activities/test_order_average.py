"""An order's average price when the order detail has none (review finding 6): BitUnix's documented
`get_order_detail` answer carries no `avgPrice`, so the average comes from the order's fills.

The documented payloads themselves (tests/exchange/fixtures/, copied from BitUnix's pages) are
served to the real client by an httpx transport, since BitUnix cannot run here; the same answer
shape from the paper exchange (fault `omit_avg_price`) then runs a real placement. Both record
into a real PostgreSQL."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal
from pathlib import Path

import httpx
from pydantic import SecretStr
from sqlalchemy import select
from temporalio.testing import ActivityEnvironment

from activities.contract import OrderRef, OrderRequest
from activities.orders import OrderActivities
from activities.records import Records
from db.models import Fill as FillRow
from db.models import Order as OrderRow
from db.models import Trade
from exchange import parse
from exchange import schemas as w
from exchange.client import BitunixClient
from trading.types import Leg, OrderStatus, OrderType, Side

FIXTURES = Path(__file__).parents[1] / "exchange" / "fixtures"
BTC = "BTCUSDT"


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


async def new_trade(sessionmaker) -> int:
    async with sessionmaker() as session, session.begin():
        row = Trade(workflow_id=f"t-{uuid.uuid4().hex}", symbol=BTC, side="LONG",
                    intent="OPEN_LONG", entry_type="limit", status="ENTERING")
        session.add(row)
        await session.flush()
        return row.id


async def order_row(sessionmaker, client_id: str) -> OrderRow:
    async with sessionmaker() as session:
        found = await session.scalar(select(OrderRow).where(OrderRow.client_order_id == client_id))
        assert found is not None
        return found


def test_the_documented_order_detail_has_no_average_price() -> None:
    envelope = w.Envelope.model_validate(w.loads(fixture("order_detail_documented.json")))
    order = parse.order(w.Order.model_validate(envelope.data))
    assert order.status is OrderStatus.FILLED and order.filled_qty == Decimal(1)
    assert order.avg_price is None  # as documented: the average is only in the fills


async def test_a_documented_order_detail_is_recorded_at_its_fills_average(sessionmaker) -> None:
    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/trade/get_order_detail"):
            return httpx.Response(200, content=fixture("order_detail_documented.json"))
        if request.url.path.endswith("/trade/get_history_trades"):
            assert request.url.params["orderId"] == "11111"
            return httpx.Response(200, content=fixture("history_trades_of_order.json"))
        return httpx.Response(404, content=json.dumps({"code": 404, "msg": "not served"}))

    client = BitunixClient("https://fapi.bitunix.test", "key", SecretStr("secret"),
                           transport=httpx.MockTransport(answer))
    trade_id = await new_trade(sessionmaker)
    # The order as our placement left it: sent, its answer known, "22222" its client id.
    await Records(sessionmaker).claim_order(OrderRequest(
        trade_id=trade_id, client_id="22222", leg=Leg.ENTRY, symbol=BTC, side=Side.BUY,
        fill_side=Side.BUY, order_type=OrderType.LIMIT, qty=Decimal(1), price=Decimal(60000),
    ))
    acts = OrderActivities(client, sessionmaker, lookup_pause_s=0.01)
    try:
        snap = await ActivityEnvironment().run(acts.sync_order, OrderRef(
            trade_id=trade_id, client_id="22222", symbol=BTC, order_id="11111"))
    finally:
        await client.aclose()
    # 0.4 at 59990 and 0.6 at 59995: (23996 + 35997) / 1, not the limit price 60000.
    assert snap.avg_price == Decimal("59993")
    assert (await order_row(sessionmaker, "22222")).avg_price == Decimal("59993")
    async with sessionmaker() as session:
        fills = (await session.scalars(select(FillRow).where(
            FillRow.exchange_trade_id.in_(["123", "124"])))).all()
    assert sorted(f.qty for f in fills) == [Decimal("0.4"), Decimal("0.6")]


async def test_a_placement_without_avg_price_in_the_answer_gets_the_fills_average(
    paper, paper_client, sessionmaker
) -> None:
    await paper.admin.set_price(BTC, "95000")
    await paper.admin.faults(omit_avg_price=True)
    acts = OrderActivities(paper_client, sessionmaker, lookup_pause_s=0.05)
    req = OrderRequest(
        trade_id=await new_trade(sessionmaker), client_id=f"TWAVG{uuid.uuid4().hex[:12].upper()}",
        leg=Leg.ENTRY, symbol=BTC, side=Side.BUY, fill_side=Side.BUY,
        order_type=OrderType.MARKET, qty=Decimal("0.0100"),
    )
    snap = await ActivityEnvironment().run(acts.place_order, req)
    assert snap.status is OrderStatus.FILLED and snap.avg_price == Decimal("95000.1")
    assert (await order_row(sessionmaker, req.client_id)).avg_price == Decimal("95000.1")
    again = await ActivityEnvironment().run(
        acts.sync_order, OrderRef(trade_id=req.trade_id, client_id=req.client_id, symbol=BTC,
                                  order_id=snap.order_id))
    assert again.avg_price == Decimal("95000.1")  # a later read keeps it, fills already stored
