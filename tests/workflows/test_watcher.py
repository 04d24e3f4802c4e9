"""The account watcher signals only the trades a change concerns: a new trade's fill, its owner
(and the one trade whose position-level TP/SL it turns order-level); a TP/SL that fired or a
manual close, every trade on the position; a round with no change, nobody. Every trade here
re-checks on its own only once an hour, so what happens within the test is the watcher's doing."""

from __future__ import annotations

import time
from decimal import Decimal

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHandle

from tests.workflows.harness import Harness, strategy, until
from trading.types import EntryType, TradeStatus
from workflows.contract import Sizing
from workflows.messages import TradeMessages
from workflows.state import TradeState

BTC = "BTCUSDT"
QTY = Decimal("0.0100")
HOUR = strategy(tracking_interval_s=3600)


def protected(s: TradeState) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


def tracking(s: TradeState) -> bool:
    return s.status is TradeStatus.TRACKING and s.filled_qty == QTY


async def signals(handle: WorkflowHandle) -> int:
    """How many `exchange_changed` signals the trade has received."""
    history = await handle.fetch_history()
    return sum(
        1 for e in history.events
        if e.event_type is EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
        and e.workflow_execution_signaled_event_attributes.signal_name == TradeMessages.EXCHANGE_CHANGED
    )


async def rounds(h: Harness, n: int) -> None:
    """Until the watcher has completed `n` whole rounds from now (it reads the account's fills
    once per round, after its other reads and before it signals; nothing else reads them
    while these trades only track)."""
    since = time.time_ns()

    async def done() -> bool:
        return len(await h.place_requests(since, "trade/get_history_trades")) > n

    await until(done, f"{n} watcher rounds")


async def counts(handles: list[WorkflowHandle]) -> list[int]:
    return [await signals(x) for x in handles]


async def test_a_resting_entrys_fill_signals_its_owner_and_a_quiet_round_nobody(
    harness: Harness, watcher: str
) -> None:
    """A limit entry that rests and then fills: nobody but the watcher can tell its trade (it
    waits an hour), so its owner is signalled; the others on the position are not."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    first = await h.trade(sizing=Sizing(size=QTY), sl=Decimal("80000"), strat=HOUR)
    st = await h.until_state(first, protected, "the first trade is protected")
    assert st.protection.level == "position"  # it owns the whole position
    old = [first]
    for _ in range(2):
        old.append(await h.trade(sizing=Sizing(size=QTY), sl=Decimal("80000"), strat=HOUR))
        await h.until_state(old[-1], protected, "a later trade is protected")
    # The first trade heard that another joined, and moved its TP/SL to the order level.
    await h.until_state(first, lambda s: s.protection.level == "order", "order-level TP/SL")
    await rounds(h, 3)
    quiet = await counts(old)
    await rounds(h, 3)
    assert await counts(old) == quiet  # nothing changed: nobody was signalled

    new = await h.trade(entry_type=EntryType.LIMIT, sizing=Sizing(size=QTY),
                        reference_price=Decimal("94000"), sl=Decimal("80000"), strat=HOUR)
    await h.until_state(new, lambda s: s.open_orders, "the new trade's limit entry rests")
    await h.paper.admin.set_price(BTC, "93900")  # the ask crosses 94000: it fills
    await h.until_state(new, protected, "the new trade heard of its fill and is protected")
    assert await signals(new) > 0
    await rounds(h, 3)
    assert await counts(old) == quiet  # the new fill concerned its owner only
    assert await h.position_qty() == 4 * QTY


async def test_a_tpsl_firing_signals_every_trade_on_the_position(
    harness: Harness, watcher: str
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    fires = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("96000"), strat=HOUR)
    await h.until_state(fires, protected, "the trade with a TP is protected")
    others = [await h.trade(sizing=Sizing(size=QTY), strat=HOUR) for _ in range(2)]
    for other in others:
        await h.until_state(other, tracking, "a trade without TP/SL is tracking")
    await h.until_state(fires, lambda s: s.protection.level == "order", "order-level TP")
    await rounds(h, 3)
    before = await counts(others)

    await h.paper.admin.set_price(BTC, "96100")
    result = await h.result(fires)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    await rounds(h, 2)
    after = await counts(others)
    assert all(a > b for a, b in zip(after, before, strict=True))  # each heard of it
    for other in others:  # and, having lost nothing, tracks on
        st = await h.state(other)
        assert st.status is TradeStatus.TRACKING and st.closed_qty == 0
    assert await h.position_qty() == 2 * QTY


async def test_a_manual_close_ends_every_trade_on_the_position(
    harness: Harness, watcher: str
) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    trades = [await h.trade(sizing=Sizing(size=QTY), sl=Decimal("80000"), strat=HOUR)
              for _ in range(3)]
    for t in trades:
        await h.until_state(t, protected, "protected")
    [position] = [p for p in await h.exchange.pending_positions(BTC) if p.qty > 0]
    await h.exchange.flash_close_position(position.position_id)
    for t in trades:
        result = await h.result(t)
        assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
        row = await h.trade_row(t)
        assert "closed outside this trade" in (row.warning or "")
    assert await h.position_qty() == 0
