"""ProtectionActivities against the paper exchange over HTTP and a real PostgreSQL: a TP/SL
whose placement answer was lost is adopted, never placed a second time (review finding 8)."""

from __future__ import annotations

import asyncio
import uuid
from decimal import Decimal

import pytest
from sqlalchemy import text
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contract import ProtectionLevel, ProtectionRequest
from activities.protection import ProtectionActivities
from db.models import Trade
from exchange.client import BitunixClient
from trading.types import OrderType, PositionSide, Side

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
# The lists show a new TP/SL this late: later than an attempt's own look after a lost answer
# (4 looks 0.2 s apart), earlier than the next attempt's.
LAG_MS = 900


@pytest.fixture
async def trade_id(sessionmaker, paper) -> int:
    """A tracking trade, alone in the database: the paper exchange restarts its ids on every
    reset, so rows of an earlier test would claim this test's TP/SL ids."""
    async with sessionmaker() as session, session.begin():
        await session.execute(text('TRUNCATE trade, "order", fill CASCADE'))
        row = Trade(workflow_id=f"t-{uuid.uuid4().hex}", symbol=BTC, side="LONG",
                    intent="OPEN_LONG", entry_type="market", status="TRACKING")
        session.add(row)
        await session.flush()
        return row.id


@pytest.fixture
def acts(paper_client, sessionmaker) -> ProtectionActivities:
    return ProtectionActivities(paper_client, sessionmaker, adopt_tries=4, adopt_pause_s=0.2)


async def position_id(paper, client: BitunixClient) -> str:
    await paper.admin.set_price(BTC, "95000")
    await client.place_order(symbol=BTC, side=Side.BUY, qty=2 * QTY, order_type=OrderType.MARKET)
    [pos] = await client.pending_positions(BTC)
    return pos.position_id


def request(trade_id: int, position: str) -> ProtectionRequest:
    # Order-level: the paper exchange keeps one position-level TP/SL per position by itself.
    return ProtectionRequest(
        trade_id=trade_id, client_id=f"TWTEST{uuid.uuid4().hex[:12].upper()}", symbol=BTC,
        position_side=PositionSide.LONG, position_id=position, level=ProtectionLevel.ORDER,
        qty=QTY, tp=Decimal("99000"), sl=Decimal("90000"),
    )


async def lost_answer(paper, acts: ProtectionActivities, req: ProtectionRequest) -> None:
    """One attempt whose TP/SL is created but whose answer is lost, and not listed in time."""
    await paper.admin.faults(drop_response={"target": "tpsl", "count": 1},
                             visibility_delay_ms=LAG_MS)
    with pytest.raises(ApplicationError, match="OutcomeUnknown"):
        await ActivityEnvironment().run(acts.place_protection, req)
    await paper.admin.clear_faults()


async def test_the_next_placement_after_a_lost_answer_adopts_it(
    paper, paper_client, acts, trade_id
) -> None:
    """The placement's retries ran out with its TP/SL unconfirmed; the next check places the
    same protection under a new client id: it adopts the TP/SL that exists."""
    position = await position_id(paper, paper_client)
    first = request(trade_id, position)
    await lost_answer(paper, acts, first)
    await asyncio.sleep(LAG_MS / 1000)  # listed by now
    second = first.model_copy(update={"client_id": first.client_id + "B"})
    snap = await ActivityEnvironment().run(acts.place_protection, second)
    pending = await paper_client.all_pending_tpsl_orders(BTC, position)
    assert [t.id for t in pending] == [snap.order_id] and snap.adopted


async def test_a_retry_waits_for_a_tpsl_the_lists_show_late(
    paper, paper_client, acts, trade_id
) -> None:
    """The retry of a placement whose answer was lost looks for it as long as the first
    attempt did before it sends again: the exchange's lists may show it late."""
    position = await position_id(paper, paper_client)
    req = request(trade_id, position)
    await lost_answer(paper, acts, req)
    snap = await ActivityEnvironment().run(acts.place_protection, req)  # the row exists
    await asyncio.sleep(LAG_MS / 1000)  # whatever was created is listed by now
    pending = await paper_client.all_pending_tpsl_orders(BTC, position)
    assert [t.id for t in pending] == [snap.order_id] and snap.adopted
