"""A trade's check compares the position with what the trade owns (workflows/reconcile.py):
a fill landing between the reads of one check is no close; a TP/SL on a later page of the
pending list is still pending; a TP/SL that is gone fired only when its own history says so,
and then only for what it closed. A TP/SL whose history or fills the exchange lists late, on a
position other trades share, is never placed again over their quantity (issue 19, gap A)."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal

from activities.contract_tracking import ExchangeChanged
from tests.workflows.conftest import QUICK_VISIBILITY_S
from tests.workflows.harness import Harness, strategy, until
from trading.types import EntryType, OrderType, Side, StopType, TradeStatus
from workflows.contract import Sizing
from workflows.messages import CancelRequest, CloseRequest
from workflows.state import TradeState
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
QUIET = strategy("quiet", tracking_interval_s=3600)  # checks only when the test signals it


def protected(s: TradeState) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


async def position_id(h: Harness) -> str:
    [pos] = await h.exchange.pending_positions(BTC)
    return pos.position_id


async def checks_since(h: Harness, handle, since_ns: int, n: int) -> None:
    """Until `n` checks have read the pending TP/SL orders since `since_ns` (or the trade
    ended)."""
    async def done() -> bool:
        if (await h.state(handle)).status.is_final:
            return True
        return len(await h.place_requests(since_ns, "tpsl/get_pending_orders")) >= n
    await until(done, f"{n} checks")


async def test_a_fill_between_the_position_read_and_the_order_sync_is_no_external_close(
    harness: Harness,
) -> None:
    """Review finding 3: B holds 0.01; A's 0.02 limit fills right after A's check read the
    position. A must not record 0.01 as closed outside it (and then flatten on B's
    position-level TP/SL): every unit at the exchange stays owned, and closing both trades
    leaves nothing behind."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    b = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"),
                      strat=QUIET)
    await h.until_state(b, lambda s: protected(s) and s.protection.level == "position",
                        "B owns the whole position")
    a = await h.trade(entry_type=EntryType.LIMIT, sizing=Sizing(size=2 * QTY),
                      reference_price=Decimal("94000"), tp=Decimal("98000"), sl=Decimal("91000"))
    await h.until_state(a, lambda s: bool(s.open_orders), "A's limit rests")
    # A's next check: the price reaches A's limit the moment its position read is answered.
    await h.paper.admin.faults(price_after={"path": "position/get_pending_positions",
                                            "symbol": BTC, "price": "94000"})
    st = await h.until_state(a, lambda s: s.status.is_final or s.filled_qty == 2 * QTY
                             and protected(s), "A filled and protected")
    assert (await h.paper.admin.state())["faults"]["price_after"] is None  # it did fire
    assert st.status is TradeStatus.TRACKING, st
    assert st.closed_qty == 0 and st.warnings == [], st
    assert st.protection.level == "order" and st.protection.qty == 2 * QTY
    assert {o.leg for o in await h.orders(st.trade_id)} == {"entry", "protection"}
    assert await h.position_qty() == 3 * QTY

    await a.signal(TradeWorkflow.close, CloseRequest())
    done = await h.result(a)
    assert done.status is TradeStatus.CLOSED and done.closed_qty == 2 * QTY
    assert await h.position_qty() == QTY  # B's, untouched
    await b.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(b)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0  # nothing left that no trade owns


async def test_a_tpsl_beyond_the_first_page_of_pending_orders_is_still_pending(
    harness: Harness,
) -> None:
    """Review finding 7: 100 newer TP/SL orders push the trade's own off the first page of
    the pending list. It is still pending: nothing is recorded, nothing placed again."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    st = await h.until_state(handle, protected, "protected")
    own = st.protection.order_id
    pid = await position_id(h)
    for _ in range(100):  # someone else's, far from the price
        await h.exchange.place_tpsl_order(
            symbol=BTC, position_id=pid, tp_price=Decimal("150000"),
            tp_stop_type=StopType.MARK_PRICE, tp_qty=Decimal("0.0001"),
        )
    await checks_since(h, handle, time.time_ns(), 3)
    st = await h.state(handle)
    assert st.status is TradeStatus.TRACKING and st.warnings == [], st
    assert st.protection.order_id == own and st.closed_qty == 0
    assert [o.leg for o in await h.orders(st.trade_id)] == ["entry", "protection"]
    assert len(await h.exchange.all_pending_tpsl_orders(BTC)) == 101
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0


async def test_a_cancelled_tpsl_is_not_taken_as_fired_by_another_close(harness: Harness) -> None:
    """Review finding 7: the trade's TP/SL is cancelled by hand while another TP/SL closes
    0.001 of the position. The trade records the 0.001 that left, not its whole quantity as
    closed by its own TP/SL, and protects the rest again."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"),
                           strat=QUIET)
    st = await h.until_state(handle, protected, "protected")
    own = st.protection.order_id
    assert own is not None
    small = Decimal("0.0010")
    await h.exchange.place_tpsl_order(
        symbol=BTC, position_id=await position_id(h), tp_price=Decimal("96000"),
        tp_stop_type=StopType.MARK_PRICE, tp_qty=small,
    )
    await h.exchange.cancel_tpsl_order(BTC, own)  # a manual cancel in the app
    await h.paper.admin.set_price(BTC, "96000")  # the other TP fires: 0.001 closed
    assert await h.position_qty() == QTY - small
    await handle.signal(ExchangeChanged.SIGNAL, ExchangeChanged(reason="test"))
    st = await h.until_state(handle, lambda s: s.status.is_final or protected(s)
                             and s.protection.order_id != own, "protected again")
    assert st.status is TradeStatus.TRACKING, st
    assert st.closed_qty == small and st.filled_qty == QTY
    assert st.protection.level == "position"
    rows = await h.orders(st.trade_id)
    [external] = [o for o in rows if o.leg == "external"]
    assert external.filled_qty == small and external.avg_price == Decimal("95999.9")  # the bid
    assert not [o for o in rows if o.leg == "triggered"]
    assert await h.position_qty() == QTY - small
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0


async def test_quantity_no_trade_owns_is_reported(harness: Harness) -> None:
    """Review finding 3, the other way round: the position holds more than the open trades
    own (here a manual buy in the app). Nothing is closed for it, but the trade says so."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"),
                           strat=QUIET)
    await h.until_state(handle, protected, "protected")
    await h.exchange.place_order(symbol=BTC, side=Side.BUY, qty=QTY / 2,
                                 order_type=OrderType.MARKET)
    await handle.signal(ExchangeChanged.SIGNAL, ExchangeChanged(reason="test"))
    st = await h.until_state(handle, lambda s: s.warnings, "a warning", timeout_s=20)
    assert "more than the open trades own" in st.warnings[0], st.warnings
    assert st.status is TradeStatus.TRACKING and st.filled_qty == QTY and st.closed_qty == 0
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == QTY / 2  # the trade closed only its own


async def test_an_exit_that_fills_between_the_order_sync_and_the_position_read_counts_once(
    harness: Harness,
) -> None:
    """The reads' order makes a position read run after the order sync: our own resting exit
    can fill between the two, so the position is gone before the ledger saw the exit's fill.
    That is no close from outside: inferring one counted the quantity closed twice."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"),
                           strat=strategy(exit_entry_type=EntryType.CHASE))
    await h.until_state(handle, protected, "tracking with its SL")
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    await h.until_state(handle, lambda s: bool(s.open_orders), "the post-only exit rests")
    # The next order detail answered (the check's sync of the exit) moves the price through it.
    await h.paper.admin.faults(price_after={"path": "trade/get_order_detail",
                                            "symbol": BTC, "price": "95001"})
    result = await h.result(handle)
    assert (await h.paper.admin.state())["faults"]["price_after"] is None  # it did fire
    assert result.status is TradeStatus.CLOSED
    assert (result.filled_qty, result.closed_qty) == (QTY, QTY)
    assert [o.leg for o in await h.orders(result.trade_id) if o.leg in ("exit", "external",
                                                                          "triggered")] == ["exit"]
    assert await h.position_qty() == 0


# --- a TP/SL that fired on a shared position while the exchange's lists lag (issue 19, gap A) --

TP = Decimal("96000")
TP_FILL = Decimal("96099.9")  # the TP's market close sells at the best bid, one tick below 96100
LATE_MS = 8_000  # longer than the fill lookups of one check, shorter than the test's waits


async def shared_position(h: Harness) -> tuple:
    """B (no TP/SL) holds 0.01, then A 0.01 with a TP: A's TP/SL is order-level, 0.01."""
    await h.paper.admin.set_price(BTC, "95000")
    b = await h.trade(sizing=Sizing(size=QTY), strat=QUIET)
    await h.until_state(b, lambda s: s.status is TradeStatus.TRACKING and s.filled_qty == QTY,
                        "B tracking")
    a = await h.trade(sizing=Sizing(size=QTY), tp=TP, strat=QUIET)
    st = await h.until_state(a, protected, "A protected")
    assert st.protection.level == "order" and st.protection.qty == QTY
    return a, b, st.protection.order_id


async def fire_a_tp(h: Harness, a) -> None:
    await h.paper.admin.set_price(BTC, "96100")  # A's TP fires: A's 0.01 closed at market
    assert await h.position_qty() == QTY
    await a.signal(ExchangeChanged.SIGNAL, ExchangeChanged(reason="test"))


async def a_closed_by_its_tp_and_b_untouched(h: Harness, a, b, tpsl_id: str) -> None:
    result = await h.result(a)
    assert result.status is TradeStatus.CLOSED, result
    assert (result.filled_qty, result.closed_qty) == (QTY, QTY)
    rows = await h.orders(result.trade_id)
    assert [o.leg for o in rows] == ["entry", "protection", "triggered"], rows
    [triggered] = [o for o in rows if o.leg == "triggered"]
    assert triggered.filled_qty == QTY and triggered.avg_price == TP_FILL
    assert triggered.error is None
    assert [f.price for f in await h.fills(result.trade_id) if f.price == TP_FILL] == [TP_FILL]
    # A placed no second TP/SL (over B's quantity) and closed nothing of B's.
    assert [t["id"] for t in (await h.paper.admin.state())["tpsl"]] == [tpsl_id]
    assert await h.position_qty() == QTY
    st = await h.state(b)
    assert st.status is TradeStatus.TRACKING and st.closed_qty == 0
    await b.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(b)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0


async def test_a_fired_tpsl_not_in_its_history_yet_is_kept_not_placed_again(
    quick_harness: Harness,
) -> None:
    """A's TP fires; the history lists it only later. Until it does, A's TP/SL is unknown:
    looked at again, never placed again (a new one would sit on B's quantity, here refused
    as the price passed it, and A would flatten B's 0.01)."""
    h = quick_harness
    a, b, tpsl_id = await shared_position(h)
    # Older than a TP/SL the lists may not show yet: its absence from them means something.
    await asyncio.sleep(float(QUICK_VISIBILITY_S))
    await h.paper.admin.faults(tpsl_history_delay_ms=LATE_MS)
    await fire_a_tp(h, a)
    await a_closed_by_its_tp_and_b_untouched(h, a, b, tpsl_id)


async def test_an_exit_waits_while_the_tpsl_may_have_closed_the_quantity_already(
    quick_harness: Harness,
) -> None:
    """An exit alert arrives while A's TP/SL is unknown (fired, history late). Sent now, the
    exit would sell A's 0.01 a second time, out of B's share: it waits until the history
    answers, and then there is nothing left to close."""
    h = quick_harness
    a, b, tpsl_id = await shared_position(h)
    await asyncio.sleep(float(QUICK_VISIBILITY_S))
    await h.paper.admin.faults(tpsl_history_delay_ms=LATE_MS)
    await fire_a_tp(h, a)
    st = await h.until_state(a, lambda s: "neither of the exchange's lists" in s.phase
                             or s.status.is_final, "A's TP/SL unknown")
    assert not st.status.is_final, st
    await a.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    await a_closed_by_its_tp_and_b_untouched(h, a, b, tpsl_id)  # no exit order among A's


async def test_a_tpsl_filled_without_listed_fills_is_recorded_at_its_trigger_then_its_fills(
    harness: Harness,
) -> None:
    """The history says FILLED, but the close's fills are listed late. FILLED means fired: A
    records its 0.01 closed at the TP's trigger price at once, then the fills replace that
    estimate (the quantity counted once)."""
    h = harness
    a, b, tpsl_id = await shared_position(h)
    await h.paper.admin.faults(tpsl_fill_delay_ms=LATE_MS)
    await fire_a_tp(h, a)
    st = await h.until_state(a, lambda s: s.closed_qty > 0 or s.status.is_final, "A closed")
    assert (st.closed_qty, st.avg_exit_price) == (QTY, TP), st  # the estimate, first
    await a_closed_by_its_tp_and_b_untouched(h, a, b, tpsl_id)


async def test_a_tpsl_never_listed_is_taken_as_fired_when_the_position_lacks_its_quantity(
    quick_harness: Harness,
) -> None:
    """The history never shows A's TP/SL. Past the bound the position decides: it holds less
    than the open trades own, so A's TP/SL is taken as fired (at most the missing quantity),
    said in a warning; the close's fills, listed, then give its price."""
    h = quick_harness
    a, b, tpsl_id = await shared_position(h)
    await asyncio.sleep(float(QUICK_VISIBILITY_S))
    await h.paper.admin.faults(tpsl_history_delay_ms=3_600_000)
    await fire_a_tp(h, a)
    await a_closed_by_its_tp_and_b_untouched(h, a, b, tpsl_id)
    row = await h.trade_row(a)
    assert "taken as fired" in (row.warning or ""), row.warning


async def test_a_tpsl_gone_while_the_position_holds_everything_owned_is_placed_again_at_once(
    quick_harness: Harness,
) -> None:
    """Cancelled by hand, and the history lags: the position still holds all the trades own,
    so the TP/SL closed nothing and the trade is protected again at the next check."""
    h = quick_harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"),
                           strat=QUIET)
    st = await h.until_state(handle, protected, "protected")
    own = st.protection.order_id
    assert own is not None
    await asyncio.sleep(float(QUICK_VISIBILITY_S))
    await h.paper.admin.faults(tpsl_history_delay_ms=3_600_000)
    await h.exchange.cancel_tpsl_order(BTC, own)  # a manual cancel in the app
    await handle.signal(ExchangeChanged.SIGNAL, ExchangeChanged(reason="test"))
    st = await h.until_state(handle, lambda s: s.status.is_final or protected(s)
                             and s.protection.order_id != own, "protected again")
    assert st.status is TradeStatus.TRACKING and st.closed_qty == 0, st
    assert len(await h.exchange.all_pending_tpsl_orders(BTC)) == 1
    await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(handle)).status is TradeStatus.CANCELLED
    assert await h.position_qty() == 0
