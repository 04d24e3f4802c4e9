"""Live-exchange facts the client models (issue 22): BitUnix's risk-limit tiers and their 20002,
and the clock read from every answer's Date header, against the paper exchange over HTTP."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from exchange import parse
from exchange import schemas as w
from exchange.clock import ClockState, ClockWatch, reading
from exchange.errors import RiskLimitExceeded
from tests.exchange.contract.conftest import SYMBOL
from trading.tiers import max_position_notional, tier_refusal
from trading.types import OrderType, Side

FIXTURES = Path(__file__).parents[1] / "fixtures"
LADDER = [
    {"startValue": "0", "endValue": "1000", "leverage": 20},
    {"startValue": "1000", "endValue": "5000", "leverage": 10},
]


def test_the_documented_tier_example_parses() -> None:
    """BitUnix's example (BTCUSDT level 1: 0–50000 notional at 125x, maintenance margin 0.004)."""
    envelope = w.Envelope.model_validate(w.loads((FIXTURES / "position_tiers.json").read_bytes()))
    tiers = [parse.risk_tier(w.PositionTier.model_validate(t)) for t in w.as_list(envelope.data)]
    assert tiers[0].end_value == Decimal(50000) and tiers[0].max_leverage == 125
    assert tiers[0].maintenance_margin_rate == Decimal("0.004")
    assert max_position_notional(tiers, 125) == Decimal(50000)
    assert max_position_notional(tiers, 20) == Decimal(50000)
    assert max_position_notional([], 20) is None  # no ladder known: the exchange decides


async def test_the_ladder_is_read_and_bounds_the_position_per_leverage(paper, client) -> None:
    await paper.admin.position_tiers(SYMBOL, LADDER)
    tiers = await client.position_tiers(SYMBOL)
    assert [(t.end_value, t.max_leverage) for t in tiers] == [(Decimal(1000), 20),
                                                              (Decimal(5000), 10)]
    assert max_position_notional(tiers, 10) == Decimal(5000)
    assert max_position_notional(tiers, 15) == Decimal(1000)
    assert max_position_notional(tiers, 25) == Decimal(0)
    why = tier_refusal(tiers, 15, Decimal(3000), SYMBOL)
    assert why is not None and "lower the size or the leverage" in why
    assert tier_refusal(tiers, 10, Decimal(3000), SYMBOL) is None


async def test_an_opening_past_the_tier_is_refused_with_20002_explained(paper, client) -> None:
    await paper.admin.set_price(SYMBOL, "50000")
    await client.change_leverage(SYMBOL, 15)
    await paper.admin.position_tiers(SYMBOL, LADDER)
    with pytest.raises(RiskLimitExceeded) as caught:
        # 0.03 × 50000 = 1500: above the 1000 that leverage 15 allows
        await client.place_order(symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.03"),
                                 order_type=OrderType.MARKET)
    err = caught.value
    assert err.code == 20002 and not err.retryable
    assert "lower the order size or the leverage" in str(err)
    # within the tier it goes through
    placed = await client.place_order(symbol=SYMBOL, side=Side.BUY, qty=Decimal("0.01"),
                                      order_type=OrderType.MARKET)
    assert placed.order_id


@pytest.mark.parametrize(("skew_ms", "state"), [
    (0, ClockState.OK), (3000, ClockState.WARN), (-3000, ClockState.WARN),
    (10_000, ClockState.REFUSE), (-10_000, ClockState.REFUSE),
])
async def test_every_answer_tells_the_clock_skew(paper, client, skew_ms, state) -> None:
    await paper.admin.faults(clock_skew_ms=skew_ms)
    await client.tickers([SYMBOL])
    assert client.clock.state is state
    assert client.clock.last is not None
    skew = client.clock.last.skew_ms
    if skew_ms == 0:
        assert skew == 0
    else:  # a lower bound: never more than the truth, at most a second (plus the trip) less
        assert abs(skew) <= abs(skew_ms) and abs(skew) >= abs(skew_ms) - 1500
        assert (skew > 0) == (skew_ms > 0)
    if state is ClockState.REFUSE:
        why = client.clock.refusal()
        assert why is not None and "TRADEWIRE_CLOCK_SKEW_MAX_MS=5000" in why
    else:
        assert client.clock.refusal() is None
    await paper.admin.faults(clock_skew_ms=0)
    await client.tickers([SYMBOL])
    assert client.clock.state is ClockState.OK  # fixed: the next answer says so


def test_the_skew_bound_never_overstates() -> None:
    # Date 12:00:00 (ms 0 of that second): the server answered in [0, 1000).
    assert reading(10_000, 9_800, 10_100).skew_ms == 0  # overlaps: no skew shown
    assert reading(10_000, 3_000, 3_100).skew_ms == 6_900  # we are at least 6.9 s behind
    assert reading(10_000, 20_000, 20_100).skew_ms == -9_000  # at least 9 s ahead
    watch = ClockWatch(1000, 5000)
    assert watch.state is ClockState.UNKNOWN and watch.refusal() is None
    watch.observe("not a date", 0, 1)
    assert watch.state is ClockState.UNKNOWN
    with pytest.raises(ValueError, match="warn_ms"):
        ClockWatch(6000, 5000)
