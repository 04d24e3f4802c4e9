"""Execution quality (ui/quality.py): slippage, the PnL it cost, latencies, strategy stats."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.types import Side
from ui.quality import (
    FillAt,
    Outcome,
    execution_cost,
    median,
    slippage_bps,
    strategy_stats,
    summarize,
    trade_quality,
)

T0 = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
prices = st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("1000000"), places=4)
qtys = st.decimals(min_value=Decimal("0.001"), max_value=Decimal("1000"), places=3)


def test_a_hand_computed_trade() -> None:
    """A long alerted at 100.00, filled 0.3 @ 100.10 and 0.7 @ 100.05: 6.5 bps worse on average
    (qty-weighted), 0.065 USDT lost, order 120 ms and first fill 250 ms after the alert."""
    fills = [FillAt(Side.BUY, Decimal("0.3"), Decimal("100.10"), Decimal("0.018"),
                    T0 + timedelta(milliseconds=250)),
             FillAt(Side.BUY, Decimal("0.7"), Decimal("100.05"), Decimal("0.042"),
                    T0 + timedelta(milliseconds=400))]
    q = trade_quality(1, received_at=T0, alert_price=Decimal("100.00"),
                      first_order_at=T0 + timedelta(milliseconds=120), fills=fills)
    assert q.slippage_bps == Decimal("6.5")
    assert q.cost_usdt == Decimal("0.065")
    assert q.avg_fill_price == Decimal("100.065")
    assert q.fees == Decimal("0.060")
    assert (q.alert_to_order_ms, q.alert_to_fill_ms) == (120, 250)


def test_a_short_filled_above_its_alert_gained() -> None:
    assert slippage_bps(Side.SELL, Decimal("2000"), Decimal("2001")) == Decimal("-5")
    assert execution_cost(Side.SELL, Decimal("2000"), Decimal("2"), Decimal("2001")) == Decimal("-2")


def test_without_an_alert_price_nothing_is_measured_but_latency_and_fees() -> None:
    fills = [FillAt(Side.BUY, Decimal("1"), Decimal("10"), Decimal("0.01"), T0 + timedelta(seconds=1))]
    q = trade_quality(2, received_at=T0, alert_price=None, first_order_at=None, fills=fills)
    assert (q.slippage_bps, q.cost_usdt, q.alert_to_order_ms, q.alert_to_fill_ms) == (
        None, None, None, 1000)
    s = summarize([q])
    assert (s.trades, s.measured, s.slippage_bps, s.fees) == (1, 0, None, Decimal("0.01"))


@given(side=st.sampled_from(list(Side)), alert=prices, fill=prices, qty=qtys)
def test_slippage_and_cost_agree_in_sign_and_size(side, alert, fill, qty) -> None:
    bps = slippage_bps(side, alert, fill)
    cost = execution_cost(side, alert, qty, fill)
    assert (bps > 0) == (cost > 0) and (bps == 0) == (cost == 0)
    # the cost is the slippage applied to the alert's notional
    assert abs(cost - bps * alert * qty / 10000) <= Decimal("1e-20") * max(1, abs(cost))
    # the other side of the same fill is the opposite
    other = Side.SELL if side is Side.BUY else Side.BUY
    assert slippage_bps(other, alert, fill) == -bps


@given(st.lists(st.tuples(prices, qtys), min_size=1, max_size=8), prices)
def test_a_trade_slippage_lies_between_its_fills(fills, alert) -> None:
    rows = [FillAt(Side.BUY, q, p, Decimal(0), T0) for p, q in fills]
    q = trade_quality(3, received_at=T0, alert_price=alert, first_order_at=T0, fills=rows)
    each = [slippage_bps(Side.BUY, alert, p) for p, _ in fills]
    slack = Decimal("1e-20") * max(Decimal(1), max(abs(x) for x in each))  # 28 digits of Decimal
    assert min(each) - slack <= q.slippage_bps <= max(each) + slack


def test_median_and_stats() -> None:
    assert median([]) is None and median([5]) == 5 and median([1, 9, 3, 7]) == 5
    outcomes = [Outcome(T0 + timedelta(hours=2), Decimal("-3")),
                Outcome(T0 + timedelta(hours=1), Decimal("10")),
                Outcome(T0 + timedelta(hours=3), Decimal("0"))]
    opened = [T0, T0 + timedelta(days=2), T0 + timedelta(days=4)]
    s = strategy_stats(outcomes, opened)
    assert [p for _, p in s.curve] == [Decimal("10"), Decimal("7"), Decimal("7")]
    assert (s.closed, s.wins, s.net_pnl) == (3, 1, Decimal("7"))
    assert s.win_rate == Decimal(100) / 3
    assert s.trades_per_day == Decimal("0.75")  # 3 trades over 4 days
