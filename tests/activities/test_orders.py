"""OrderActivities against the paper exchange over HTTP and a real PostgreSQL: the SENDING row,
re-sends that look up first, 30042, 20007, post-only refusals, late sends, cancels."""

from __future__ import annotations

import asyncio
import time
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.contract import OrderRef, OrderRequest, SettleRequest
from activities.orders import OrderActivities
from activities.records import Records
from db.models import Fill as FillRow
from db.models import Order as OrderRow
from db.models import Trade
from tests.support.queued import queued_client, until_claimed
from trading.types import Effect, Leg, OrderStatus, OrderType, Side

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


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
    # No visibility window: here the exchange's silence about a claimed order is conclusive at
    # once (the window itself is tested with `patient` below).
    return OrderActivities(paper_client, sessionmaker, lookup_pause_s=0.1,
                           visibility_window=timedelta(0))


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


async def test_a_placements_fills_are_known_as_recorded_to_the_watcher(acts, paper, paper_client, sessionmaker, trade_id) -> None:
    """The account watcher does not signal a trade about a fill the trade recorded itself
    (activities/watcher.py): the placement records its fills as it reports them."""
    snap = await ActivityEnvironment().run(acts.place_order, request(trade_id))
    fills = await paper_client.history_trades(BTC, order_id=snap.order_id, limit=100)
    assert fills
    async with sessionmaker() as session:
        ours = await session.get(OrderRow, (await row(sessionmaker, snap.client_id)).id)
        assert ours is not None and ours.filled_qty == QTY
        recorded = set((await session.scalars(select(FillRow.exchange_trade_id).where(
            FillRow.exchange_trade_id.in_([f.trade_id for f in fills])))).all())
    assert recorded == {f.trade_id for f in fills}
    # (The paper exchange's ids restart with it: another test's row may hold the same id, so
    # what the watcher reads of them is shown on an order and ids of this test's own.)
    tag = uuid.uuid4().hex[:10]
    ids = {f"{tag}-1", f"{tag}-2"}
    async with sessionmaker() as session, session.begin():
        order = OrderRow(trade_id=trade_id, client_order_id=f"TWTEST{tag.upper()}", symbol=BTC,
                         leg="entry", side="BUY", order_type="LIMIT", qty=QTY,
                         price=Decimal("95000"), filled_qty=QTY / 4, status="PART_FILLED")
        session.add(order)
        await session.flush()
        for fill_id in ids:
            session.add(FillRow(order_id=order.id, exchange_trade_id=fill_id, qty=QTY / 4,
                                price=Decimal("95000"), filled_at=datetime.now(UTC)))
    records = Records(sessionmaker)
    # The call that recorded them reported a quarter filled (it read the fills after the
    # order's detail): half is recorded, so the fills are news to the trade.
    assert await records.recorded_fills([*ids, "nobody's"]) == set()
    async with sessionmaker() as session, session.begin():
        await session.execute(update(OrderRow).where(OrderRow.id == order.id)
                              .values(filled_qty=QTY / 2))
    assert await records.recorded_fills([*ids, "nobody's"]) == ids  # reported: known


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


async def test_late_resends_on_one_symbol_share_their_price_read(
    acts, paper, sessionmaker, trade_id
) -> None:
    """A candle close under BitUnix's limits re-sends many market orders late, each re-checking
    the price against its alert's (depth is 10 requests/s per account): re-sends on one symbol
    within a second share one read of the book, as the entries' own reads do."""
    await paper.admin.set_price(BTC, "95000")
    reqs = [request(trade_id, slippage_anchor=Decimal("95000"), max_slippage_bps=Decimal(50))
            for _ in range(3)]
    for req in reqs:
        await Records(sessionmaker).claim_order(req)  # earlier attempts got as far as the row
    since = time.time_ns()
    snaps = await asyncio.gather(*(ActivityEnvironment().run(acts.place_order, req)
                                   for req in reqs))
    assert all(s.status is OrderStatus.FILLED for s in snaps)
    depth = [r for r in await paper.admin.requests(since) if r["path"].endswith("market/depth")]
    assert len(depth) == 1, depth


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


# --- an order's fate: "not visible" is conclusive only after the visibility window ----------

WINDOW = timedelta(seconds=4)  # longer than the lags below, as in production


@pytest.fixture
def patient(paper, paper_client, sessionmaker) -> OrderActivities:
    """Order activities with a visibility window: an order claimed less than WINDOW ago that
    the exchange does not show may still appear."""
    return OrderActivities(paper_client, sessionmaker, lookup_pause_s=0.1,
                           visibility_window=WINDOW)


async def _sent_by_an_earlier_attempt(sessionmaker, paper_client, req: OrderRequest) -> None:
    """What an attempt whose answer was lost leaves behind: the claimed row, and the order."""
    await Records(sessionmaker).claim_order(req)
    await paper_client.place_order(symbol=req.symbol, side=req.side, qty=req.qty,
                                   order_type=req.order_type, price=req.price,
                                   client_id=req.client_id)


async def _until_it_works(call, *args, timeout_s: float = 30.0):
    """Run an activity the way Temporal retries it: again after each retryable failure."""
    env = ActivityEnvironment()
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            return await env.run(call, *args)
        except ApplicationError as failed:
            if failed.non_retryable or asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)


async def test_resend_waits_for_an_order_not_visible_yet_and_never_sends_it_again(
    patient, paper, paper_client, sessionmaker, trade_id
) -> None:
    """An earlier attempt's order that the exchange does not show yet: looked for again
    (retryably) and adopted once it shows, never sent a second time meanwhile (whether a
    client id stays unique once its order is filled is not documented: 30042 is no guard)."""
    await paper.admin.faults(visibility_delay_ms=2_000)
    req = request(trade_id)
    await _sent_by_an_earlier_attempt(sessionmaker, paper_client, req)
    since = time.time_ns()
    with pytest.raises(ApplicationError) as not_yet:
        await ActivityEnvironment().run(patient.place_order, req)
    assert not_yet.value.type == "NotFoundYet" and not not_yet.value.non_retryable
    snap = await _until_it_works(patient.place_order, req)
    assert snap.adopted and snap.status is OrderStatus.FILLED and snap.filled_qty == QTY
    assert not [r for r in await paper.admin.requests(since) if r["path"].endswith("place_order")]
    assert len(await api_orders(paper)) == 1


async def test_late_resend_of_an_order_not_visible_yet_never_declares_it_not_sent(
    patient, paper, paper_client, sessionmaker, trade_id
) -> None:
    """Past the alert's deadline the placement stops, but leaves the claim SENDING, never
    "not sent": the trade's settle_orders finds the order, which filled."""
    await paper.admin.faults(visibility_delay_ms=2_000)
    req = request(trade_id, send_deadline=datetime.now(UTC) - timedelta(seconds=1))
    await _sent_by_an_earlier_attempt(sessionmaker, paper_client, req)
    with pytest.raises(ApplicationError) as too_old:
        await ActivityEnvironment().run(patient.place_order, req)
    assert too_old.value.type == "AlertTooOld"
    assert (await row(sessionmaker, req.client_id)).status == "SENDING"
    settled = await _until_it_works(
        patient.settle_orders, SettleRequest(trade_id=trade_id, symbol=BTC, leg=Leg.ENTRY)
    )
    assert [(o.client_id, o.status, o.filled_qty) for o in settled.orders] == [
        (req.client_id, OrderStatus.FILLED, QTY)]
    assert (await row(sessionmaker, req.client_id)).status == "FILLED"
    assert len(await api_orders(paper)) == 1


async def test_collect_waits_for_a_sending_order_that_is_not_visible_yet(
    patient, paper, paper_client, sessionmaker, trade_id
) -> None:
    """A sub-second chase's order whose send was in flight when the chase stopped: the
    collection finds it once the exchange shows it, and cancels it; it is never declared
    REJECTED while it rests at the exchange."""
    from activities.contract_tracking import CollectRequest
    from activities.fast_chase import FastChaseActivities

    await paper.admin.faults(visibility_delay_ms=2_000)
    req = request(trade_id, order_type=OrderType.LIMIT, effect=Effect.POST_ONLY,
                  price=Decimal("94000"))
    await _sent_by_an_earlier_attempt(sessionmaker, paper_client, req)
    collect = FastChaseActivities(paper_client, patient).collect_orders
    ask = CollectRequest(trade_id=trade_id, symbol=BTC, client_ids=[req.client_id])
    with pytest.raises(ApplicationError) as not_yet:
        await ActivityEnvironment().run(collect, ask)
    assert not_yet.value.type == "NotFoundYet" and not not_yet.value.non_retryable
    done = await _until_it_works(collect, ask)
    assert [o.status for o in done.orders] == [OrderStatus.CANCELED]
    assert [o["status"] for o in await api_orders(paper)] == ["CANCELED"]
    assert (await row(sessionmaker, req.client_id)).status == "CANCELED"


async def test_a_claim_never_sent_is_rejected_only_after_the_visibility_window(
    patient, paper, sessionmaker, trade_id
) -> None:
    req = request(trade_id, order_type=OrderType.LIMIT, price=Decimal("94000"))
    await Records(sessionmaker).claim_order(req)  # the process died before the send
    ref = OrderRef(trade_id=trade_id, client_id=req.client_id, symbol=BTC)
    with pytest.raises(ApplicationError) as not_yet:
        await ActivityEnvironment().run(patient.cancel_order, ref)
    assert not_yet.value.type == "NotFoundYet" and not not_yet.value.non_retryable
    await asyncio.sleep(WINDOW.total_seconds())
    snap = await ActivityEnvironment().run(patient.cancel_order, ref)
    assert snap.status is OrderStatus.REJECTED and "never placed" in (snap.error or "")
    assert not await api_orders(paper)
    # Settled as never placed: a late re-run of its placement sends nothing either.
    again = await ActivityEnvironment().run(patient.place_order, req)
    assert again.status is OrderStatus.REJECTED and not await api_orders(paper)


async def test_a_released_claim_is_settled_at_once_saying_nothing_was_sent(
    patient, paper, sessionmaker, trade_id
) -> None:
    """A claim whose placement was cancelled before its send (released): a trade that gives the
    order up settles it at once, and its row says what happened: nothing was sent (not "the
    exchange did not show it within the window of its send")."""
    req = request(trade_id, order_type=OrderType.LIMIT, price=Decimal("94000"))
    claim = await Records(sessionmaker).claim_order(req)
    assert claim.stamp is not None
    assert await Records(sessionmaker).release_claim(req.client_id, claim.stamp)
    ref = OrderRef(trade_id=trade_id, client_id=req.client_id, symbol=BTC)
    snap = await ActivityEnvironment().run(patient.cancel_order, ref)
    assert snap.status is OrderStatus.REJECTED
    assert "cancelled before its send" in (snap.error or ""), snap.error
    assert "of its send" not in (snap.error or "")


async def test_an_entry_claimed_before_a_halt_is_not_sent_after_it(
    acts, paper, sessionmaker, trade_id
) -> None:
    """The attempt that claimed the entry died before sending it; the account is halted
    before the retry. The retry sends nothing: the claim passed the risk gate before the halt,
    the send would come after it (docs/design.md#risk)."""
    from activities.risk import RiskBook
    from trading.risk import ACCOUNT
    from trading.types import TradingState

    req = request(trade_id)
    await Records(sessionmaker).claim_order(req)  # the process died before the send
    await RiskBook(sessionmaker).set_state(ACCOUNT, TradingState.HALTED, actor="test",
                                           reason="halt between claim and send")
    try:
        with pytest.raises(ApplicationError) as refused:
            await ActivityEnvironment().run(acts.place_order, req)
        assert refused.value.type == "RiskRefused" and refused.value.non_retryable
        assert "the account is HALTED" in refused.value.message
        assert not await api_orders(paper)
        settled = await row(sessionmaker, req.client_id)
        assert settled.status == "REJECTED" and "risk" in (settled.error or "")
    finally:
        await RiskBook(sessionmaker).set_state(ACCOUNT, TradingState.ACTIVE, actor="test",
                                               reason="resume")


# --- placements queued behind the account's request budget (a candle-close burst) ----------

PLACE_PATH = "/api/v1/futures/trade/place_order"


async def _until_at_the_exchange(paper, client_id: str) -> None:
    for _ in range(400):
        if [o for o in await api_orders(paper) if o["clientId"] == client_id]:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"{client_id} never reached the exchange")


async def test_a_placement_cancelled_in_the_budget_queue_is_sent_at_once_by_the_next_attempt(
    patient, paper, sessionmaker, trade_id
) -> None:
    """A first placement cut short while it waits for its turn (its local activity's timeout):
    nothing was sent, so its claim is released, and the next attempt sends at once, once. It
    used to wait out the visibility window first (30 s in production), looking the order up,
    and a candle-close burst left trades ENTERING past their alert's age."""
    queued = queued_client(paper, PLACE_PATH, seconds=5)
    try:
        slow = OrderActivities(queued, sessionmaker, lookup_pause_s=0.1, visibility_window=WINDOW)
        req = request(trade_id)
        env = ActivityEnvironment()
        waiting = asyncio.create_task(env.run(slow.place_order, req))
        await until_claimed(sessionmaker, req.client_id)
        await asyncio.sleep(0.3)  # in the budget's queue now
        env.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
    finally:
        await queued.aclose()
    assert (await row(sessionmaker, req.client_id)).status == "SENDING"
    assert not await api_orders(paper)
    since = time.time_ns()
    snap = await ActivityEnvironment().run(patient.place_order, req)  # well within WINDOW
    assert snap.status is OrderStatus.FILLED and snap.filled_qty == QTY and not snap.adopted
    sent = await paper.admin.requests(since)
    assert len([r for r in sent if r["path"].endswith("place_order")]) == 1
    assert len(await api_orders(paper)) == 1


async def test_a_placement_whose_turn_comes_after_the_alert_age_is_not_sent(
    patient, paper, sessionmaker, trade_id
) -> None:
    """The deadline is checked when the order's turn in the budget comes, not only before it
    queues: an order is never sent after its alert's max age."""
    queued = queued_client(paper, PLACE_PATH, seconds=3)
    try:
        slow = OrderActivities(queued, sessionmaker, lookup_pause_s=0.1, visibility_window=WINDOW)
        req = request(trade_id, send_deadline=datetime.now(UTC) + timedelta(seconds=1))
        with pytest.raises(ApplicationError) as too_old:
            await ActivityEnvironment().run(slow.place_order, req)
    finally:
        await queued.aclose()
    assert too_old.value.type == "AlertTooOld" and too_old.value.non_retryable
    assert "request budget" in too_old.value.message
    assert not await api_orders(paper)
    settled = await row(sessionmaker, req.client_id)
    assert settled.status == "REJECTED" and (settled.error or "").startswith("not sent")


async def test_a_claim_taken_over_while_its_placement_waited_is_not_sent_by_it(
    patient, paper, sessionmaker, trade_id
) -> None:
    """A placement still waiting for its turn when its claim is past the visibility window
    (an attempt Temporal gave up on, still running on a cut-off worker): another attempt may
    take the claim over and send. The waiting one must then never send: that would be a second
    order. It checks the claim is still its own right before its send."""
    queued = queued_client(paper, PLACE_PATH, seconds=6)
    try:
        slow = OrderActivities(queued, sessionmaker, lookup_pause_s=0.1, visibility_window=WINDOW)
        req = request(trade_id)
        waiting = asyncio.create_task(ActivityEnvironment().run(slow.place_order, req))
        await until_claimed(sessionmaker, req.client_id)
        await asyncio.sleep(WINDOW.total_seconds() + 0.2)
        assert not waiting.done()
        # The other attempt: the claim's window has passed with nothing visible; it is its own.
        assert await Records(sessionmaker).take_over_claim(req.client_id, WINDOW) is not None
        with pytest.raises(ApplicationError) as lost:
            await waiting
    finally:
        await queued.aclose()
    assert lost.value.type == "NotFoundYet" and not lost.value.non_retryable
    assert not await api_orders(paper)
    assert (await row(sessionmaker, req.client_id)).status == "SENDING"


async def test_a_send_after_a_long_turn_restarts_its_claims_window(
    patient, paper, sessionmaker, trade_id
) -> None:
    """A claim's visibility window counts from its last send: a placement that waited past
    the window for its turn moves its claim's stamp before sending, so no other attempt can
    take over (and send again) while the exchange may not show the order yet."""
    await paper.admin.faults(visibility_delay_ms=2_000)
    queued = queued_client(paper, PLACE_PATH, seconds=5)
    try:
        slow = OrderActivities(queued, sessionmaker, lookup_pause_s=0.1, visibility_window=WINDOW)
        req = request(trade_id)
        waiting = asyncio.create_task(ActivityEnvironment().run(slow.place_order, req))
        claimed = await until_claimed(sessionmaker, req.client_id)
        await _until_at_the_exchange(paper, req.client_id)
        # Sent more than WINDOW after the claim, not visible yet: the claim is not for taking.
        assert await Records(sessionmaker).take_over_claim(req.client_id, WINDOW) is None
        stamped = await row(sessionmaker, req.client_id)
        assert stamped.updated_at > claimed.updated_at + WINDOW
        snap = await waiting
    finally:
        await queued.aclose()
    assert snap.order_id is not None and len(await api_orders(paper)) == 1


async def test_a_slow_last_word_before_a_send_costs_one_more_turn_at_most(paper) -> None:
    """The caller's `before_send` (a claim's re-stamp, a database write) that outlasts the
    request's budget slot gets one more slot, never more: slow writes must not keep an order
    from ever going while each lap uses up a slot of the account's place_order budget."""
    queued = queued_client(paper, PLACE_PATH, seconds=1)
    laps = 0

    async def slow() -> None:
        nonlocal laps
        laps += 1
        await asyncio.sleep(0.3)  # longer than a slot may wait (client.LATE_AFTER_SLOT_S)

    try:
        placed = await asyncio.wait_for(queued.place_order(
            symbol=BTC, side=Side.BUY, qty=QTY, order_type=OrderType.MARKET,
            client_id=f"TWTEST{uuid.uuid4().hex[:12].upper()}", before_send=slow), 30)
    finally:
        await queued.aclose()
    assert placed.order_id and laps == 2
