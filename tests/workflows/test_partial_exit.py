"""Partial exits on real parts (docs/design.md#exits, issue 23 item 5): an exit that closes part
of a trade's own quantity leaves the rest tracked and protected, its TP/SL sized to what the
trade still owns, at the paper exchange over HTTP; a base size asked of two trades closes the
oldest first. The trade is TRACKING throughout, its closed quantity and PnL grow."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import pytest_asyncio

from tests.workflows.harness import Harness, strategy
from tests.workflows.test_risk_switch import (
    _stop_webhook_trades,
    add_strategy,
    alert,
    ended,
    webhook,
)
from trading.exits import ExitPlan, TakeProfit
from trading.types import EntryType, Intent, PositionMode, TradeStatus
from workflows import closing
from workflows.contract import Sizing
from workflows.messages import CloseRequest
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0300")
HALF = Decimal("0.0150")
SL = Decimal("90000")
HOUR = strategy(tracking_interval_s=3600)  # nothing but the exit moves the trade


@pytest_asyncio.fixture(loop_scope="session")
async def h(harness: Harness):
    await harness.paper.admin.set_price(BTC, "95000")
    yield harness
    await _stop_webhook_trades(harness)  # the harness stops only the trades it started


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


def kept(closed: Decimal):
    """Back to tracking, `closed` closed, protected, no order left working."""
    def check(s) -> bool:
        return (s.status is TradeStatus.TRACKING and s.closed_qty == closed
                and s.phase == "tracking" and s.protection.order_id is not None
                and not s.open_orders)
    return check


async def sl_orders(h: Harness) -> list[tuple[Decimal | None, Decimal | None]]:
    """The pending TP/SLs at the exchange, as (sl price, sl qty)."""
    return sorted((t.sl_price, t.sl_qty) for t in await h.exchange.pending_tpsl_orders(BTC))


async def test_half_of_a_lone_trade_closes_and_the_rest_stays_tracked_and_protected(
    h: Harness,
) -> None:
    handle = await h.trade(sizing=Sizing(size=QTY), sl=SL, strat=HOUR)
    before = await h.until_state(handle, protected, "tracking and protected")
    assert before.protection.level == "position"

    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert", pct=Decimal(50)))
    st = await h.until_state(handle, kept(HALF), "half closed, the rest tracked")
    assert st.filled_qty == QTY
    # The closed half's own PnL: its exit price against its share of the entry's cost.
    assert st.realized_pnl == HALF * (st.avg_exit_price - st.avg_entry_price)
    assert await h.position_qty() == HALF
    # A position-level stop closes the whole position, all of it the trade's: the same stop
    # now protects exactly the 0.015 left.
    assert st.protection.order_id == before.protection.order_id and st.protection.sl == SL
    assert (st.protection.level, st.protection.qty) == ("position", HALF)
    assert [p for p, _ in await sl_orders(h)] == [SL]
    row = await h.trade_row(handle)
    assert (row.status, row.closed_qty, row.filled_qty) == ("TRACKING", HALF, QTY)
    assert row.realized_pnl is not None
    exits = [(o.leg, o.filled_qty) for o in await h.orders(row.id) if o.leg == "exit"]
    assert exits == [("exit", HALF)]

    # The rest closes with a whole exit, as before.
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await h.position_qty() == 0 and await sl_orders(h) == []
    await h.keep_history(handle, "partial_exit_then_whole")


async def test_a_base_size_part_beside_another_trade_resizes_its_own_order_level_tpsl(
    h: Harness,
) -> None:
    """Two trades on one position (order-level TP/SLs): a part of one closes only its own
    quantity, its TP/SL is sized to what it keeps, the other's stays as it was."""
    # Checks every 2 s: the first trade sees the second join its position on its own timer.
    one = await h.trade(sizing=Sizing(size=QTY), sl=SL, strat=strategy())
    await h.until_state(one, protected, "the first protected")
    other_qty = Decimal("0.0100")
    other = await h.trade(sizing=Sizing(size=other_qty), sl=Decimal("91000"), strat=strategy())
    await h.until_state(other, protected, "the other protected")
    before = await h.until_state(one, lambda s: s.protection.level == "order"
                                 and s.protection.qty == QTY, "the first at order level")
    assert await sl_orders(h) == [(SL, QTY), (Decimal("91000"), other_qty)]

    await one.signal(TradeWorkflow.close, CloseRequest(reason="exit alert", qty=Decimal("0.01")))
    left = Decimal("0.0200")
    st = await h.until_state(one, lambda s: kept(Decimal("0.0100"))(s)
                             and s.protection.qty == left, "0.01 closed, the TP/SL resized")
    # The same TP/SL, resized before the part's order went: the rest was never unprotected.
    assert st.protection.level == "order" and st.protection.order_id == before.protection.order_id
    assert not st.warnings, st.warnings
    assert await sl_orders(h) == [(SL, left), (Decimal("91000"), other_qty)]
    assert await h.position_qty() == left + other_qty
    st2 = await h.state(other)
    assert st2.status is TradeStatus.TRACKING and st2.closed_qty == 0


async def test_in_hedge_mode_a_part_of_the_short_leaves_the_long_alone(h: Harness) -> None:
    await h.exchange.change_position_mode(PositionMode.HEDGE)
    long = await h.trade(sizing=Sizing(size=QTY), sl=SL, strat=HOUR)
    short = await h.trade(intent=Intent.OPEN_SHORT, sizing=Sizing(size=QTY),
                          sl=Decimal("99000"), strat=HOUR)
    await h.until_state(long, protected, "the long protected")
    await h.until_state(short, protected, "the short protected")

    await short.signal(TradeWorkflow.close, CloseRequest(reason="exit alert", pct=Decimal(50)))
    st = await h.until_state(short, kept(HALF), "half of the short closed")
    assert st.realized_pnl == HALF * (st.avg_entry_price - st.avg_exit_price)
    assert await h.position_qty(side="SHORT") == HALF
    assert await h.position_qty(side="LONG") == QTY
    assert (await h.state(long)).closed_qty == 0
    assert sorted(p for p, _ in await sl_orders(h)) == [SL, Decimal("99000")]


async def test_close_pct_100_closes_everything(h: Harness) -> None:
    handle = await h.trade(sizing=Sizing(size=QTY), sl=SL, strat=HOUR)
    await h.until_state(handle, protected, "tracking and protected")
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert", pct=Decimal(100)))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await h.position_qty() == 0


async def test_a_part_larger_than_the_trade_closes_only_what_it_owns(h: Harness) -> None:
    """A base size above what the trade owns (TradingView's contracts, say, where Tradewire
    sized the trade smaller) closes the trade's own quantity, never more: it is a whole exit.
    (Rests below the pair's minimum are covered in tests/trading/test_partial.py.)"""
    handle = await h.trade(sizing=Sizing(size=QTY), sl=SL, strat=HOUR)
    await h.until_state(handle, protected, "tracking and protected")
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert", qty=Decimal("1")))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await h.position_qty() == 0


async def test_a_part_below_the_minimum_is_refused_with_a_warning(h: Harness) -> None:
    handle = await h.trade(sizing=Sizing(size=QTY), sl=SL, strat=HOUR)
    await h.until_state(handle, protected, "tracking and protected")
    await handle.signal(TradeWorkflow.close,
                        CloseRequest(reason="exit alert", qty=Decimal("0.00005")))
    st = await h.until_state(handle, lambda s: any("partial exit refused" in w
                                                   for w in s.warnings), "refused, visibly")
    assert "min_qty" in next(w for w in st.warnings if "partial exit refused" in w)
    assert st.status is TradeStatus.TRACKING and st.closed_qty == 0
    assert await h.position_qty() == QTY


async def test_two_partial_exits_run_one_after_the_other_on_what_is_left(h: Harness) -> None:
    handle = await h.trade(sizing=Sizing(size=QTY), sl=SL, strat=HOUR)
    await h.until_state(handle, protected, "tracking and protected")
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="first", pct=Decimal(50)))
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="second", pct=Decimal(50)))
    # 50 % of 0.03, then 50 % of the 0.015 left (0.0075): queued, never added up to 100 %.
    await h.until_state(handle, kept(Decimal("0.0225")), "both parts closed")
    assert await h.position_qty() == Decimal("0.0075")


async def test_a_failed_partial_exit_keeps_the_trade_protected_and_is_tried_again(
    h: Harness,
) -> None:
    handle = await h.trade(sizing=Sizing(size=QTY), sl=SL,
                           strat=strategy(tracking_interval_s=2))
    await h.until_state(handle, protected, "tracking and protected")
    await h.paper.admin.symbol_status(BTC, "STOP")
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert", pct=Decimal(50)))
    st = await h.until_state(handle, lambda s: any(w.startswith(closing.PARTIAL_FAILED)
                                                   for w in s.warnings), "failing, visibly")
    assert st.status is TradeStatus.TRACKING and "partial exit failing" in st.phase
    assert st.closed_qty == 0 and st.protection.order_id is not None
    await h.paper.admin.symbol_status(BTC, "OPEN")
    st = await h.until_state(handle, kept(HALF), "the retry closes the half")
    assert not any(w.startswith(closing.PARTIAL_FAILED) for w in st.warnings)
    assert await h.position_qty() == HALF


async def test_a_failed_part_beside_another_trade_is_retried_and_leaves_its_own_tpsl_sized(
    h: Harness,
) -> None:
    """The symbol stops while two trades share it: the part's order is refused, the trade
    stays TRACKING with a warning and no more closed; once the symbol trades again the retry
    closes the part and the TP/SL covers the rest, the other trade untouched."""
    one = await h.trade(sizing=Sizing(size=QTY), sl=SL, strat=strategy())
    await h.until_state(one, protected, "the first protected")
    other_qty = Decimal("0.0100")
    other = await h.trade(sizing=Sizing(size=other_qty), sl=Decimal("91000"), strat=strategy())
    await h.until_state(other, protected, "the other protected")
    await h.until_state(one, lambda s: s.protection.level == "order" and s.protection.qty == QTY,
                        "the first at order level")
    await h.paper.admin.symbol_status(BTC, "STOP")
    await one.signal(TradeWorkflow.close, CloseRequest(reason="exit alert", pct=Decimal(50)))
    st = await h.until_state(one, lambda s: any(w.startswith(closing.PARTIAL_FAILED)
                                                for w in s.warnings), "failing, visibly")
    assert st.status is TradeStatus.TRACKING and st.closed_qty == 0
    assert await h.position_qty() == QTY + other_qty
    await h.paper.admin.symbol_status(BTC, "OPEN")
    st = await h.until_state(one, lambda s: kept(HALF)(s) and s.protection.qty == HALF,
                             "the retry closes the half, the TP/SL sized to the rest")
    assert await h.position_qty() == HALF + other_qty
    assert await sl_orders(h) == [(SL, HALF), (Decimal("91000"), other_qty)]
    assert (await h.state(other)).closed_qty == 0


async def test_a_partial_exit_during_the_entry_waits_for_it_and_closes_its_part_of_the_fill(
    h: Harness,
) -> None:
    """Unlike a whole exit, a partial exit does not stop the entry: the chase goes on, and the
    part is taken of what the entry filled once it has."""
    await h.paper.admin.freeze(BTC)  # only the prices this test sets move the book
    try:
        handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY),
                               reference_price=Decimal("95000"), sl=SL,
                               strat=strategy(chase_interval_s=Decimal(30), max_chases=1,
                                              tracking_interval_s=3600))
        await h.until_state(handle, lambda s: [o.leg for o in s.open_orders] == ["entry"],
                            "the post-only buy resting")
        await handle.signal(TradeWorkflow.close,
                            CloseRequest(reason="exit alert", pct=Decimal(50)))
        st = await h.state(handle)  # the signal is in: the entry still rests
        assert st.status is TradeStatus.ENTERING and [o.leg for o in st.open_orders] == ["entry"]
        await h.paper.admin.set_price(BTC, "94990")  # the resting buy fills (maker)
        st = await h.until_state(handle, kept(HALF), "filled, then half of it closed")
        assert st.filled_qty == QTY
        assert await h.position_qty() == HALF
    finally:
        await h.paper.admin.freeze(BTC, frozen=False)


async def test_partial_exit_alerts_through_the_webhook(h: Harness, tmp_path: Path) -> None:
    """TradingView's partial exit (sell, still long, a smaller market_position_size) was a 422:
    now `close_pct` closes that share of each open trade, a base `size` closes the oldest
    first; with nothing open it answers as a whole exit does."""
    strat = await add_strategy(h, tmp_path, tracking_interval_s=3600)
    partial = {"action": "sell", "market_position": "long", "prev_market_position": "long"}
    async with webhook(h, tmp_path) as api:
        # (Earlier than the opens below: an exit that found nothing makes an open of the
        # same second stale, docs/design.md#dedupe-ordering-and-workflow-ids.)
        earlier = (datetime.now(UTC) - timedelta(seconds=5)).strftime("%Y-%m-%dT%H:%M:%SZ")
        nothing = await alert(api, strat, **partial, market_position_size=HALF, size=HALF,
                              time=earlier)
        assert nothing.status_code == 200, nothing.text
        assert nothing.json()["outcome"] == "NOTHING_TO_CLOSE"

        first = await alert(api, strat, size=Decimal("0.01"), sl=SL)
        second = await alert(api, strat, size=Decimal("0.01"), sl=SL)
        assert (first.status_code, second.status_code) == (202, 202), (first.text, second.text)
        handles = [h.client.get_workflow_handle(r.json()["workflow_id"]) for r in (first, second)]
        for handle in handles:
            await h.until_state(handle, protected, "tracking and protected")

        # strategy.exit(qty_percent=50) of the 0.02 held: each trade closes half of its own.
        half = await alert(api, strat, **partial, market_position_size=Decimal("0.01"),
                           size=Decimal("0.01"), close_pct=Decimal(50))
        assert half.status_code == 202, half.text
        assert len(half.json()["closing"]) == 2
        for handle in handles:
            await h.until_state(handle, kept(Decimal("0.0050")), "half of each closed")
        assert await h.position_qty() == Decimal("0.0100")

        # strategy.close(qty=0.0075): the oldest's 0.005, then 0.0025 of the newer.
        base = await alert(api, strat, **partial, market_position_size=Decimal("0.0025"),
                           size=Decimal("0.0075"))
        assert base.status_code == 202, base.text
        assert [c["workflow_id"] for c in base.json()["closing"]] == [hd.id for hd in handles]
        row = await ended(h, first.json()["trade_id"])
        assert row.status == TradeStatus.CLOSED and row.closed_qty == Decimal("0.01")
        st = await h.until_state(handles[1], kept(Decimal("0.0075")), "the newer keeps 0.0025")
        assert not any("WITHOUT" in w for w in st.warnings), st.warnings
        assert await h.position_qty() == Decimal("0.0025")


def test_a_whole_close_is_sent_as_before_and_a_part_round_trips() -> None:
    """A worker of the earlier version forbids unknown fields: a whole close carries none."""
    assert CloseRequest(reason="exit alert", signal_id=5).model_dump() == {
        "reason": "exit alert", "signal_id": 5, "notify_workflow_id": None}
    part = CloseRequest(reason="exit alert", pct=Decimal("50"))
    assert part.partial and CloseRequest.model_validate(part.model_dump()) == part
    assert not CloseRequest(pct=Decimal(100)).partial
    assert CloseRequest(qty=Decimal("0.01")).partial


async def test_a_partial_exit_of_a_laddered_trade_leaves_levels_of_the_rest_only(
    h: Harness,
) -> None:
    """The ladder's reduce-only levels never hold more than the trade keeps: they are
    cancelled before the part's order and placed again, resized, for the rest."""
    plan = ExitPlan(tps=(TakeProfit(pct=Decimal(1), qty_pct=Decimal(50)),
                         TakeProfit(pct=Decimal(2))))
    handle = await h.trade(sizing=Sizing(size=QTY), sl=SL, strat=HOUR, exits=plan)
    await h.until_state(handle, lambda s: protected(s) and s.exits is not None and [
        lv.status for lv in s.exits.levels] == ["working", "working"], "two levels resting")
    assert sum(q for _, q in await resting(h)) == QTY

    since = time.time_ns()
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert", pct=Decimal(50)))
    st = await h.until_state(handle, lambda s: s.closed_qty == HALF and s.exits is not None
                             and [lv.status for lv in s.exits.levels] == ["working"] * 2
                             and s.phase == "tracking", "half closed, the levels resized")
    # The levels were cancelled before the part's order went out, not resized after it.
    log = await h.paper.admin.requests(since)
    [part] = [e for e in log if e["path"].endswith("trade/place_order") and leg_of(e) == "X"]
    assert [e for e in log if e["path"].endswith("trade/cancel_orders")
            and e["t_ns"] < part["t_ns"]]
    levels = await resting(h)
    assert sum(q for _, q in levels) == HALF == st.filled_qty - st.closed_qty
    assert [q for _, q in levels] == [Decimal("0.0075"), Decimal("0.0075")]
    assert await h.position_qty() == HALF

    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await resting(h) == [] and await sl_orders(h) == []


def leg_of(entry: dict) -> str:
    """The leg letter of a Tradewire client order id (trading/ids.py)."""
    return (entry["client_id"] or "").rstrip("0123456789")[-1:]


async def resting(h: Harness) -> list[tuple[Decimal, Decimal]]:
    """(price, qty) of the reduce-only limit orders resting at the exchange."""
    return sorted((o.price, o.qty) for o in await h.exchange.pending_orders(BTC) if o.reduce_only)
