"""Chase entries: re-pricing, fills through a re-price, fallback, give-up, a rejected post-only,
and a cancel answered in failureList that must not overfill."""

from __future__ import annotations

from decimal import Decimal

from temporalio.api.enums.v1 import PendingActivityState

from tests.workflows.harness import Harness, strategy, until
from trading.types import ChaseFallback, EntryType, OrderStatus, TradeStatus
from workflows.contract import Sizing

BTC = "BTCUSDT"
QTY = Decimal("0.0100")


def entry_prices(st) -> list[Decimal]:
    return [o.price for o in st.open_orders if o.leg == "entry"]


async def test_chase_fills_through_a_reprice_then_tp_closes_it(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY),
                           reference_price=Decimal("95000"), tp=Decimal("97000"),
                           sl=Decimal("93000"))
    await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("94999.9")],
                        "a post-only buy at the best bid")
    await h.paper.admin.set_price(BTC, "95010")
    st = await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("95009.9")],
                             "re-priced to the new best bid")
    assert st.chases == 1
    await h.paper.admin.set_price(BTC, "95005")  # the resting buy at 95009.9 fills (maker)
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                             and s.protection.order_id is not None, "filled and protected")
    assert st.filled_qty == QTY and st.avg_entry_price == Decimal("95009.9")
    await h.paper.admin.set_price(BTC, "97100")
    result = await h.result(handle)
    assert result.status is TradeStatus.CLOSED and result.closed_qty == QTY
    row = await h.trade_row(handle)
    assert row.realized_pnl == QTY * (Decimal("97099.9") - Decimal("95009.9"))
    entries = [o for o in await h.orders(row.id) if o.leg == "entry"]
    assert [o.status for o in entries] == [OrderStatus.CANCELED, OrderStatus.FILLED]
    assert sum(o.filled_qty for o in entries) == QTY
    await h.keep_history(handle, "chase_reprice_take_profit")


async def test_chase_falls_back_to_market_after_max_chases(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    strat = strategy(max_chases=1, chase_fallback=ChaseFallback.MARKET)
    handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY), strat=strat,
                           reference_price=Decimal("95000"))
    await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("94999.9")], "resting")
    await h.paper.admin.set_price(BTC, "95001")
    await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("95000.9")], "re-priced")
    await h.paper.admin.set_price(BTC, "95002")
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING, "market fallback")
    assert st.filled_qty == QTY and st.avg_entry_price == Decimal("95002.1")
    assert any("fell back to market" in w for w in st.warnings)


async def test_chase_gives_up_beyond_the_slippage_bound(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    strat = strategy(max_slippage_bps=Decimal(10), chase_fallback=ChaseFallback.GIVE_UP)
    handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY), strat=strat,
                           reference_price=Decimal("95000"))
    await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("94999.9")], "resting")
    await h.paper.admin.move(BTC, 20)  # 20 bps up: beyond the 10 bps bound
    result = await h.result(handle)
    assert result.status is TradeStatus.FAILED and result.filled_qty == 0
    assert "slippage" in (result.error or "")
    assert not await h.exchange.pending_orders(BTC)
    await h.keep_history(handle, "chase_give_up")


async def test_post_only_rejected_on_arrival_is_repriced_not_failed(harness: Harness) -> None:
    """A re-price whose post-only order would take by the time it arrives (the price fell while
    it was in flight) comes back rejected: the chase places it again, it does not fail."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY),
                           reference_price=Decimal("95000"))
    await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("94999.9")], "resting")
    await h.paper.admin.faults(post_only_mode="reject", latency_ms=800)
    await h.paper.admin.set_price(BTC, "95010")  # the chase cancels and re-places at 95009.9
    await until(lambda: _placing(handle), "the re-price's placement is in flight")
    await h.paper.admin.set_price(BTC, "95000")  # now a buy at 95009.9 would take: rejected
    st = await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("94999.9")]
                             and s.chases >= 2, "placed again after the rejection")
    await h.paper.admin.clear_faults()
    rejected = [o for o in await h.orders(st.trade_id) if o.status == OrderStatus.REJECTED]
    assert len(rejected) == 1 and rejected[0].price == Decimal("95009.9")
    await h.paper.admin.set_price(BTC, "94990")
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING, "filled")
    assert st.filled_qty == QTY and await h.position_qty() == QTY


async def _placing(handle) -> bool:
    desc = await handle.describe()
    return any(a.activity_type.name == "place_order"
               and a.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED
               for a in desc.raw_description.pending_activities)


async def test_cancel_answered_in_failure_list_never_overfills(harness: Harness) -> None:
    """The cancel of a re-price finds the order filled (cancel_fill_race): the chase must see
    the fill through the order detail and place nothing more."""
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY),
                           reference_price=Decimal("95000"))
    await h.until_state(handle, lambda s: entry_prices(s) == [Decimal("94999.9")], "resting")
    await h.paper.admin.faults(cancel_fill_race=True)
    await h.paper.admin.set_price(BTC, "95010")  # the chase re-prices: its cancel meets a fill
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING, "tracking")
    await h.paper.admin.clear_faults()
    assert st.filled_qty == QTY
    assert await h.position_qty() == QTY
    entries = [o for o in await h.orders(st.trade_id) if o.leg == "entry"]
    assert len(entries) == 1 and entries[0].status == OrderStatus.FILLED
    cancels = [r for r in await h.paper.admin.requests() if r["path"].endswith("cancel_orders")]
    assert cancels, "the chase tried to cancel"
    await until(lambda: _no_open_orders(h), "no order left working")


async def _no_open_orders(h: Harness) -> bool:
    return not await h.exchange.pending_orders(BTC)


async def test_sub_second_chase_runs_in_one_activity_and_fills(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    strat = strategy(chase_interval_s=Decimal("0.2"))
    handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY), strat=strat,
                           reference_price=Decimal("95000"), sl=Decimal("90000"))
    await until(lambda: _resting_at(h, Decimal("94999.9")), "a post-only buy at the best bid")
    await h.paper.admin.set_price(BTC, "95010")
    await until(lambda: _resting_at(h, Decimal("95009.9")), "re-priced within the activity")
    await h.paper.admin.set_price(BTC, "95005")
    st = await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING
                             and s.protection.order_id is not None, "filled and protected")
    assert st.filled_qty == QTY and st.chases == 1 and await h.position_qty() == QTY
    history = await handle.fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name
                 for e in history.events if e.HasField("activity_task_scheduled_event_attributes")]
    assert scheduled.count("chase_fast") == 1 and "place_order" not in scheduled


async def test_cancel_stops_a_sub_second_chase_and_its_working_order(harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "95000")
    strat = strategy(chase_interval_s=Decimal("0.2"))
    handle = await h.trade(entry_type=EntryType.CHASE, sizing=Sizing(size=QTY), strat=strat,
                           reference_price=Decimal("95000"))
    await until(lambda: _resting_at(h, Decimal("94999.9")), "resting")
    await handle.signal("cancel", {"flatten": False})
    result = await h.result(handle)
    assert result.status is TradeStatus.CANCELLED and result.filled_qty == 0
    assert not await h.exchange.pending_orders(BTC)
    [entry] = [o for o in await h.orders(result.trade_id) if o.leg == "entry"]
    assert entry.status == OrderStatus.CANCELED


async def _resting_at(h: Harness, price: Decimal) -> bool:
    return [o.price for o in await h.exchange.pending_orders(BTC)] == [price]
