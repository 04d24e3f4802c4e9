"""Exits that fail (docs/design.md#ownership, #protection, #reverses): a trade whose close the
exchange rejects stays RUNNING, TRACKING, warned and protected, tries the exit again on its
cadence (never in a hot loop) and closes once closes work; an order-level TP/SL cancelled for an
exit that failed is placed again; a reverse opens its new side only once its predecessor is
known to own nothing."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest
from temporalio.client import WorkflowExecutionStatus

from tests.workflows.harness import Harness, strategy, until
from trading.errors import InvalidOrderRequest
from trading.types import Intent, PositionMode, TradeStatus
from workflows import closing, trade
from workflows.contract import Sizing
from workflows.messages import CancelRequest, CloseRequest, PredecessorClosed
from workflows.trade import TradeWorkflow

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
EXIT_FAILED = closing.EXIT_FAILED


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


def exit_failing(s) -> bool:
    return (s.status is TradeStatus.TRACKING and "exit failing" in s.phase
            and any(w.startswith(EXIT_FAILED) for w in s.warnings))


async def pending_tpsl(h: Harness) -> list:
    return await h.exchange.pending_tpsl_orders(BTC)


@pytest.fixture
def closes_refused(monkeypatch: pytest.MonkeyPatch) -> dict[str, bool]:
    """While `on` is True, sizing a close raises a domain error, as a pair whose rules make the
    close impossible would (the exchange itself stays open, so only the close fails)."""
    switch = {"on": True}
    real = closing.close_parts

    def close_parts(*args, **kwargs):
        if switch["on"]:
            raise InvalidOrderRequest("the close cannot be sized (test)")
        return real(*args, **kwargs)

    monkeypatch.setattr(closing, "close_parts", close_parts)
    return switch


async def test_a_rejected_close_keeps_the_trade_tracked_protected_and_retried(
    harness: Harness,
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"),
                           strat=strategy(tracking_interval_s=2))
    before = await h.until_state(handle, protected, "protected")
    await h.paper.admin.symbol_status(BTC, "STOP")  # every order is rejected, closes too
    since = time.time_ns()
    await handle.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))

    st = await h.until_state(handle, exit_failing, "the exit failing, visibly")
    assert "STOP" in st.phase
    # Tried again on its cadence (every 2 s here), not in a hot loop.
    async def rejected_closes() -> list[dict] | None:
        sent = [r for r in await h.place_requests(since) if r["code"] != 0]
        return sent if len(sent) >= 3 else None

    sent = await until(rejected_closes, "three rejected close attempts")
    gaps = [(b["t_ns"] - a["t_ns"]) / 1e9 for a, b in zip(sent, sent[1:], strict=False)]
    assert all(gap >= 1.5 for gap in gaps), gaps
    # Still running, still protected at the exchange, and the row says why.
    assert (await handle.describe()).status is WorkflowExecutionStatus.RUNNING
    st = await h.state(handle)
    assert st.protection.order_id == before.protection.order_id
    assert [t.id for t in await pending_tpsl(h)] == [before.protection.order_id]
    assert await h.position_qty() == QTY
    # (CLOSING only while an attempt runs.)
    async def row_says_so() -> bool:
        row = await h.trade_row(handle)
        return row.status == TradeStatus.TRACKING.value and EXIT_FAILED in (row.warning or "")

    await until(row_says_so, "the trade row TRACKING with the warning")

    await h.paper.admin.symbol_status(BTC, "OPEN")  # closes work again: a later try closes it
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await h.position_qty() == 0
    assert not await pending_tpsl(h)
    await h.keep_history(handle, "exit_failing_retried")


async def test_an_order_level_tpsl_cancelled_for_a_failed_exit_is_placed_again(
    harness: Harness, closes_refused: dict[str, bool],
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    strat = strategy(tracking_interval_s=2)
    first = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"), strat=strat)
    await h.until_state(first, protected, "the first trade protected")
    second = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("91000"), strat=strat)
    await h.until_state(second, protected, "the second trade protected")
    st = await h.until_state(first, lambda s: s.protection.level == "order", "order-level")
    cancelled = st.protection.order_id

    await first.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    st = await h.until_state(first, lambda s: exit_failing(s) and s.protection.order_id
                             not in (None, cancelled), "the exit failing, protected again")
    assert "cannot be sized" in st.phase
    assert (st.protection.level, st.protection.qty) == ("order", QTY)
    mine = [t for t in await pending_tpsl(h) if t.id == st.protection.order_id]
    assert [(t.sl_price, t.sl_qty) for t in mine] == [(Decimal("90000"), QTY)]
    assert (await h.state(second)).status is TradeStatus.TRACKING

    closes_refused["on"] = False
    result = await h.result(first)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    assert await h.position_qty() == QTY  # the second trade's quantity, untouched
    st2 = await h.state(second)
    assert st2.status is TradeStatus.TRACKING and st2.filled_qty == QTY
    assert [t.id for t in await pending_tpsl(h)] == [st2.protection.order_id]


async def test_a_reverse_does_not_open_while_its_predecessor_cannot_close(
    harness: Harness, closes_refused: dict[str, bool], monkeypatch: pytest.MonkeyPatch,
) -> None:
    h = harness
    monkeypatch.setattr(trade, "REVERSE_WAIT_S", 5)
    await h.exchange.change_position_mode(PositionMode.HEDGE)  # one-way would refuse anyway
    await h.paper.admin.set_price(BTC, "95000")
    old = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"),
                        strat=strategy(tracking_interval_s=2))
    await h.until_state(old, protected, "the long is open")
    new = await h.trade(intent=Intent.REVERSE_TO_SHORT, sizing=Sizing(size=2 * QTY),
                        close_first_workflow_id=old.id, sl=Decimal("99000"))
    result = await h.result(new)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert "did not close within" in (result.error or "")
    assert not await h.orders(result.trade_id)
    assert await h.position_qty(side="SHORT") == 0
    assert exit_failing(await h.state(old))
    await h.keep_history(new, "reverse_refused_predecessor_open")

    closes_refused["on"] = False  # the old side closes later; the refused reverse stays so
    closed = await h.result(old)
    assert closed.status is TradeStatus.CLOSED and closed.closed_qty == QTY
    assert await h.position_qty(side="LONG") == 0
    assert await h.position_qty(side="SHORT") == 0


async def test_a_predecessor_that_ended_without_closing_refuses_the_reverse(
    harness: Harness, closes_refused: dict[str, bool],
) -> None:
    """As an earlier version's trade did when its close failed: it ended TRACKING and told the
    reverse so. The reverse honours the status it is told."""
    h = harness
    await h.exchange.change_position_mode(PositionMode.HEDGE)
    await h.paper.admin.set_price(BTC, "95000")
    old = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"))
    await h.until_state(old, protected, "the long is open")
    new = await h.trade(intent=Intent.REVERSE_TO_SHORT, sizing=Sizing(size=QTY),
                        close_first_workflow_id=old.id)
    # The wait itself, not the moment the reverse tells the long to close (a phase that lasts
    # only until that signal is delivered: a poll could miss it).
    await h.until_state(new, lambda s: s.phase == f"waiting for {old.id} to close first",
                        "waiting for the long")
    await new.signal(TradeWorkflow.predecessor_closed,
                     PredecessorClosed(workflow_id="trade-someone-else", status=TradeStatus.CLOSED))
    await new.signal(TradeWorkflow.predecessor_closed,
                     PredecessorClosed(workflow_id=old.id, status=TradeStatus.TRACKING))
    result = await h.result(new)
    assert result.status is TradeStatus.REFUSED and "ended TRACKING" in (result.error or "")
    assert not await h.orders(result.trade_id)
    assert await h.position_qty(side="SHORT") == 0


async def test_a_reverse_refuses_when_its_stopped_predecessor_still_owns_quantity(
    harness: Harness,
) -> None:
    h = harness
    await h.exchange.change_position_mode(PositionMode.HEDGE)
    await h.paper.admin.set_price(BTC, "95000")
    held = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("90000"))
    await h.until_state(held, protected, "the long is open")
    await held.terminate("operator")  # stopped while it still owns its quantity
    new = await h.trade(intent=Intent.REVERSE_TO_SHORT, sizing=Sizing(size=QTY),
                        close_first_workflow_id=held.id)
    result = await h.result(new)
    assert result.status is TradeStatus.REFUSED
    assert "not running and is TRACKING with 0.01 open" in (result.error or "")
    assert await h.position_qty(side="SHORT") == 0


async def test_a_reverse_opens_when_its_predecessor_ended_owning_nothing(
    harness: Harness,
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    done = await h.trade(sizing=Sizing(size=QTY))
    await h.until_state(done, lambda s: s.status is TradeStatus.TRACKING, "the long is open")
    await done.signal(TradeWorkflow.close, CloseRequest(reason="exit alert"))
    assert (await h.result(done)).status is TradeStatus.CLOSED
    # It closed before the reverse could reach it: its record says it owns nothing.
    new = await h.trade(intent=Intent.REVERSE_TO_SHORT, sizing=Sizing(size=QTY),
                        close_first_workflow_id=done.id)
    st = await h.until_state(new, lambda s: s.status is TradeStatus.TRACKING, "the short is open")
    assert st.filled_qty == QTY
    assert await h.position_qty(side="SHORT") == QTY
    await new.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
    assert (await h.result(new)).status is TradeStatus.CANCELLED
    await h.keep_history(new, "reverse_predecessor_ended")
