"""ProtectionActivities against the paper exchange over HTTP and a real PostgreSQL: a TP/SL
whose placement answer was lost is adopted, never placed a second time (review finding 8); and
when the TP/SL wanted changed before the next placement, the lost one (an unsettled claim) is
adopted and moved, or cancelled, and its row settled (issue 19, gap B)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contract import (
    ClaimsRequest,
    OrderRequest,
    OrderSnapshot,
    ProtectionLevel,
    ProtectionRequest,
)
from activities.protection import ProtectionActivities
from activities.records import Records
from db.models import Order as OrderRow
from db.models import Trade
from exchange.client import BitunixClient
from tests.support.queued import queued_client, until_claimed
from trading.types import Leg, OrderStatus, OrderType, PositionSide, Side

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


# How long the exchange may take to show a new TP/SL, for these activities: a claim older
# than this whose TP/SL no list shows was never placed.
WINDOW = timedelta(seconds=2)


@pytest.fixture
def acts(paper_client, sessionmaker) -> ProtectionActivities:
    return ProtectionActivities(paper_client, sessionmaker, adopt_tries=4, adopt_pause_s=0.2,
                                visibility_window=WINDOW)


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


# --- unsettled claims: a lost placement, and the TP/SL wanted changed since (gap B) ----------


def new_client_id() -> str:
    return f"TWTEST{uuid.uuid4().hex[:12].upper()}"


async def row(sessionmaker, client_id: str):
    return await Records(sessionmaker).order_row(client_id)


async def test_a_claims_tpsl_is_adopted_and_resized_for_the_next_placement(
    paper, paper_client, sessionmaker, acts, trade_id
) -> None:
    """A further fill changed the size: the next placement (0.02) adopts the lost TP/SL of
    0.01 (its claim), resizes it and records it under the claim's row; nothing is sent."""
    position = await position_id(paper, paper_client)
    await paper_client.place_order(symbol=BTC, side=Side.BUY, qty=QTY, order_type=OrderType.MARKET)
    first = request(trade_id, position)
    await lost_answer(paper, acts, first)
    await asyncio.sleep(LAG_MS / 1000)  # listed by now
    [lost] = await paper_client.all_pending_tpsl_orders(BTC, position)
    second = first.model_copy(update={"client_id": new_client_id(), "qty": 2 * QTY,
                                      "earlier": [first.claim()]})
    snap = await ActivityEnvironment().run(acts.place_protection, second)
    assert (snap.client_id, snap.order_id, snap.qty) == (first.client_id, lost.id, 2 * QTY)
    [tpsl] = await paper_client.all_pending_tpsl_orders(BTC, position)
    assert tpsl.id == lost.id and (tpsl.tp_qty, tpsl.sl_qty) == (2 * QTY, 2 * QTY)
    settled = await row(sessionmaker, first.client_id)
    assert (settled.status, settled.exchange_order_id, settled.qty) == ("NEW", lost.id, 2 * QTY)
    assert await row(sessionmaker, second.client_id) is None  # nothing claimed, nothing sent


async def test_a_claims_tpsl_at_another_level_is_cancelled_before_the_new_one(
    paper, paper_client, sessionmaker, acts, trade_id
) -> None:
    """The lost TP/SL is position-level (the trade owned the whole position), the next
    placement order-level (another trade joined): left live, the position-level one would
    close the other trade's quantity. It is cancelled and its claim settled."""
    position = await position_id(paper, paper_client)
    first = request(trade_id, position).model_copy(update={"level": ProtectionLevel.POSITION})
    await lost_answer(paper, acts, first)
    await asyncio.sleep(LAG_MS / 1000)
    [lost] = await paper_client.all_pending_tpsl_orders(BTC, position)
    second = request(trade_id, position).model_copy(update={"earlier": [first.claim()]})
    snap = await ActivityEnvironment().run(acts.place_protection, second)
    pending = await paper_client.all_pending_tpsl_orders(BTC, position)
    assert [t.id for t in pending] == [snap.order_id] and snap.order_id != lost.id
    assert pending[0].tp_qty == QTY
    settled = await row(sessionmaker, first.client_id)
    assert (settled.status, settled.exchange_order_id) == ("CANCELED", lost.id)


async def test_a_claim_with_no_tpsl_is_settled_and_another_trades_twin_is_never_touched(
    paper, paper_client, sessionmaker, acts, trade_id
) -> None:
    """The lost placement created nothing. Another open trade has a TP/SL exactly like the
    one the claim asked for, recorded by its own row: it is not the claim's. The claim is
    settled as not placed (past the window) and the new TP/SL is placed beside the twin."""
    position = await position_id(paper, paper_client)
    other = await other_trade(sessionmaker)
    first = request(trade_id, position)
    twin_id = await paper_client.place_tpsl_order(
        symbol=BTC, position_id=position, tp_price=first.tp, tp_qty=QTY, sl_price=first.sl,
        sl_qty=QTY,
    )
    await Records(sessionmaker).save_order(other, BTC, OrderSnapshot(
        client_id=f"TWOTHER{uuid.uuid4().hex[:10].upper()}", order_id=twin_id,
        leg=Leg.PROTECTION, fill_side=Side.SELL, order_type=OrderType.MARKET, qty=QTY,
        price=None, status=OrderStatus.NEW,
    ), reduce_only=True)
    await Records(sessionmaker).claim_order(OrderRequest(  # claimed; nothing was sent
        trade_id=trade_id, client_id=first.client_id, leg=Leg.PROTECTION, symbol=BTC,
        side=Side.SELL, fill_side=Side.SELL, reduce_only=True, order_type=OrderType.MARKET,
        qty=QTY,
    ))
    await asyncio.sleep(WINDOW.total_seconds())
    second = request(trade_id, position).model_copy(update={"earlier": [first.claim()]})
    snap = await ActivityEnvironment().run(acts.place_protection, second)
    pending = {t.id for t in await paper_client.all_pending_tpsl_orders(BTC, position)}
    assert pending == {twin_id, snap.order_id} and snap.order_id != twin_id
    assert (await row(sessionmaker, first.client_id)).status == "REJECTED"


async def test_a_young_claim_no_list_shows_yet_holds_the_next_placement_back(
    paper, paper_client, sessionmaker, acts, trade_id
) -> None:
    """A claim sent moments ago whose TP/SL the lists do not show yet may still appear: the
    next placement sends nothing (a retryable failure), then adopts it once it shows."""
    position = await position_id(paper, paper_client)
    first = request(trade_id, position)
    await lost_answer(paper, acts, first)
    second = first.model_copy(update={"client_id": new_client_id(), "qty": QTY / 2,
                                      "earlier": [first.claim()]})
    with pytest.raises(ApplicationError, match="not listed yet") as held:
        await ActivityEnvironment().run(acts.place_protection, second)
    assert not held.value.non_retryable
    assert len((await paper.admin.state())["tpsl"]) == 1  # nothing sent
    await asyncio.sleep(LAG_MS / 1000)
    snap = await ActivityEnvironment().run(acts.place_protection, second)
    [tpsl] = await paper_client.all_pending_tpsl_orders(BTC, position)
    assert (snap.order_id, snap.client_id, tpsl.tp_qty) == (tpsl.id, first.client_id, QTY / 2)


async def test_settling_claims_cancels_each_claims_tpsl(
    paper, paper_client, sessionmaker, acts, trade_id
) -> None:
    """Before an exit or the trade's end: the claim's TP/SL, adopted by nothing, is cancelled
    and its row settled."""
    position = await position_id(paper, paper_client)
    first = request(trade_id, position)
    await lost_answer(paper, acts, first)
    await asyncio.sleep(LAG_MS / 1000)
    [lost] = await paper_client.all_pending_tpsl_orders(BTC, position)
    await ActivityEnvironment().run(acts.settle_protection_claims, ClaimsRequest(
        trade_id=trade_id, symbol=BTC, position_side=PositionSide.LONG, claims=[first.claim()],
    ))
    assert await paper_client.all_pending_tpsl_orders(BTC, position) == []
    settled = await row(sessionmaker, first.client_id)
    assert (settled.status, settled.exchange_order_id) == ("CANCELED", lost.id)


async def other_trade(sessionmaker) -> int:
    async with sessionmaker() as session, session.begin():
        other = Trade(workflow_id=f"t-{uuid.uuid4().hex}", symbol=BTC, side="LONG",
                      intent="OPEN_LONG", entry_type="market", status="TRACKING")
        session.add(other)
        await session.flush()
        return other.id


# --- a placement queued behind the account's request budget (a candle-close burst) ----------

TPSL_PATH = "/api/v1/futures/tpsl/place_order"


async def _first_change(sessionmaker, claimed: OrderRow, placing: asyncio.Task) -> OrderRow:
    """The claim's row as it first changes, or as it is once the placement is over."""
    while True:
        done = placing.done()
        async with sessionmaker() as session:
            row = await session.scalar(select(OrderRow).where(OrderRow.id == claimed.id))
        assert row is not None
        if done or row.updated_at != claimed.updated_at or row.status != claimed.status:
            return row
        await asyncio.sleep(0.05)


async def test_a_tpsl_sent_after_a_long_turn_restarts_its_claims_window(
    paper, paper_client, sessionmaker, trade_id
) -> None:
    """A claim's visibility window counts from its send (docs/design.md#late-sends), for a
    TP/SL as for an order: a placement that waited past the window for its turn moves its
    claim's stamp before sending. Otherwise the trade's next placement could settle the claim
    as never placed while its TP/SL is on its way, and place a second one."""
    position = await position_id(paper, paper_client)
    queued = queued_client(paper, TPSL_PATH, seconds=6)  # three times WINDOW: room for a slow claim
    await paper.admin.faults(latency_ms=1500)  # the send's answer: time to look in between
    try:
        slow = ProtectionActivities(queued, sessionmaker, adopt_tries=1, adopt_pause_s=0.1,
                                    visibility_window=WINDOW)
        req = request(trade_id, position)
        waiting = asyncio.create_task(ActivityEnvironment().run(slow.place_protection, req))
        claimed = await until_claimed(sessionmaker, req.client_id)
        changed = await _first_change(sessionmaker, claimed, waiting)
        assert changed.status == "SENDING", "the TP/SL was sent under its claim's old stamp"
        assert changed.updated_at > claimed.updated_at + WINDOW
        # The trade's next placement, looking at this claim now: not for settling.
        assert not await Records(sessionmaker).reject_unplaced(req.client_id, WINDOW, "test")
        snap = await waiting
    finally:
        await paper.admin.clear_faults()
        await queued.aclose()
    pending = await paper_client.all_pending_tpsl_orders(BTC, position)
    assert [t.id for t in pending] == [snap.order_id]


async def test_a_retry_of_a_placement_its_row_records_sends_nothing(
    paper, paper_client, acts, trade_id
) -> None:
    """An attempt that placed its TP/SL and recorded it, then never reported back (its worker
    died after the save, or Temporal timed it out while it waited for its turn and it went on):
    the retry finds its own row recording the TP/SL and returns it. It used to leave that TP/SL
    out of its look (a row records it) and place a second one."""
    position = await position_id(paper, paper_client)
    req = request(trade_id, position)
    first = await ActivityEnvironment().run(acts.place_protection, req)
    retry = await ActivityEnvironment().run(acts.place_protection, req)
    pending = await paper_client.all_pending_tpsl_orders(BTC, position)
    assert [t.id for t in pending] == [first.order_id]
    assert retry.order_id == first.order_id


async def test_a_tpsl_sent_late_counts_as_young_from_its_send(
    sessionmaker, trade_id
) -> None:
    """The trade's check asks whether its TP/SL was placed moments ago (the lists may not show
    it yet, and taking it as gone would place a second one): moments after its send, not after
    its claim, which a turn behind the request budget may have made long ago."""
    records = Records(sessionmaker)
    req = request(trade_id, "POS1")
    claim = await records.claim_order(OrderRequest(
        trade_id=trade_id, client_id=req.client_id, leg=Leg.PROTECTION, symbol=BTC,
        side=Side.SELL, fill_side=Side.SELL, order_type=OrderType.MARKET, qty=QTY))
    async with sessionmaker() as session, session.begin():
        await session.execute(
            text('UPDATE "order" SET created_at = now() - interval \'1 hour\', '
                 "updated_at = now() - interval '1 hour' WHERE id = :id"), {"id": claim.row_id})
    assert not await records.placed_within(req.client_id, WINDOW)
    old = (await until_claimed(sessionmaker, req.client_id)).updated_at
    assert await records.restamp_claim(req.client_id, old) is not None  # right before its send
    assert await records.placed_within(req.client_id, WINDOW)
