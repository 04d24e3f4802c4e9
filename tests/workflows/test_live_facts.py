"""Live-exchange facts a trade meets (issue 22): BitUnix's risk-limit tiers (20002) and a clock
too far from the exchange's. Both end the trade REFUSED with a reason that says what to do."""

from __future__ import annotations

import logging
from decimal import Decimal

import pytest

from activities import watcher as watcher_module
from activities.watcher import FillWindow, WatcherActivities
from tests.workflows.harness import Harness, strategy
from trading.types import TradeStatus
from workflows.contract import Sizing

BTC = "BTCUSDT"


async def test_a_position_past_its_risk_limit_tier_is_refused_with_what_to_do(
        harness: Harness) -> None:
    h = harness
    await h.paper.admin.set_price(BTC, "50000")
    await h.paper.admin.position_tiers(BTC, [{"startValue": "0", "endValue": "1000",
                                              "leverage": 125}])
    # A first entry within the ladder: the symbol's ladder is read beside it (never on the
    # order's path), and kept.
    first = await h.trade(strat=strategy(leverage=10), sizing=Sizing(size=Decimal("0.001")))
    await h.until_state(first, lambda s: s.status is TradeStatus.TRACKING, "a first trade")
    placed = len(await h.place_requests())
    handle = await h.trade(strat=strategy(leverage=10), sizing=Sizing(size=Decimal("0.05")))
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    # Refused before the send, from the ladder the exchange publishes: no order, no 20002.
    assert "risk-limit tier" in (result.error or "") and "at most 1000" in (result.error or "")
    assert "lower the size or the leverage" in (result.error or "")
    assert (await h.trade_row(handle)).error == result.error
    assert len(await h.place_requests()) == placed  # nothing sent for the refused one


async def test_the_other_trades_on_the_side_count_toward_the_tier(harness: Harness) -> None:
    """The tier is the position's, which the symbol's other open trades share: an entry that
    fits alone (300 USDT) but not beside what they hold (750) is refused before the send."""
    h = harness
    await h.paper.admin.set_price(BTC, "50000")
    await h.paper.admin.position_tiers(BTC, [{"startValue": "0", "endValue": "1000",
                                              "leverage": 125}])
    held = await h.trade(strat=strategy(leverage=10), sizing=Sizing(size=Decimal("0.015")))
    await h.until_state(held, lambda s: s.status is TradeStatus.TRACKING, "750 USDT held")
    placed = len(await h.place_requests())
    handle = await h.trade(strat=strategy(leverage=10), sizing=Sizing(size=Decimal("0.006")))
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert "risk-limit tier" in (result.error or "") and "at most 1000" in (result.error or "")
    assert len(await h.place_requests()) == placed  # refused before the send, not by a 20002


async def test_a_position_past_its_tier_the_ladder_did_not_show_is_refused_by_the_exchange(
        harness: Harness) -> None:
    """A ladder read before it changed (kept an hour), or not read yet: BitUnix's own 20002
    then refuses the order, explained, and the trade ends REFUSED after that one placement."""
    h = harness
    await h.paper.admin.set_price(BTC, "50000")
    first = await h.trade(strat=strategy(leverage=10), sizing=Sizing(size=Decimal("0.001")))
    await h.until_state(first, lambda s: s.status is TradeStatus.TRACKING, "a first trade")
    await h.paper.admin.position_tiers(BTC, [{"startValue": "0", "endValue": "1000",
                                              "leverage": 125}])
    before = len(await h.place_requests())
    handle = await h.trade(strat=strategy(leverage=10), sizing=Sizing(size=Decimal("0.05")))
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert "20002" in (result.error or "")
    assert "lower the order size or the leverage" in (result.error or "")
    assert len(await h.place_requests()) == before + 1  # refused once: no rule refresh, no resend


async def test_a_clock_too_far_from_the_exchanges_refuses_new_entries_until_fixed(
        harness: Harness) -> None:
    h = harness
    await h.paper.admin.faults(clock_skew_ms=10_000)
    handle = await h.trade(sizing=Sizing(size=Decimal("0.01")))
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert "TRADEWIRE_CLOCK_SKEW_MAX_MS" in (result.error or "")
    assert not await h.placed_by(handle)  # nothing was sent
    await h.paper.admin.faults(clock_skew_ms=0)  # the clock is fixed: the next answer says so
    again = await h.trade(sizing=Sizing(size=Decimal("0.01")))
    st = await h.until_state(again, lambda s: s.filled_qty == Decimal("0.01"), "filled")
    assert st.status is TradeStatus.TRACKING and st.error is None


async def test_the_account_watcher_logs_the_clock_at_its_start_then_hourly(
        harness: Harness, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    h = harness
    await h.paper.admin.faults(clock_skew_ms=-10_000)
    watcher = WatcherActivities(h.exchange, h.sessionmaker, h.client)
    caplog.set_level(logging.INFO, logger="exchange.clock")

    def clock_lines() -> list[str]:
        lines = [r.getMessage() for r in caplog.records if r.name == "exchange.clock"]
        caplog.clear()
        return lines

    view = await watcher.round(None, FillWindow())
    first = clock_lines()
    assert first and all("ahead of BitUnix's clock" in x and "new entries are refused" in x
                         for x in first)
    view = await watcher.round(view, FillWindow())
    assert clock_lines() == []  # within the hour, and no bound crossed: nothing new
    monkeypatch.setattr(watcher_module, "CLOCK_LOG_S", 0)  # an hour later
    await watcher.round(view, FillWindow())
    assert len(clock_lines()) == 1
