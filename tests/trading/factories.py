"""Pair rules for the trading tests: the vendor's BTCUSDT example row, and a hypothesis
strategy over realistic rows (precisions 0-10, minimums off the grid, optional bands)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

from trading.rules import PairRules
from trading.types import PairStatus

D = Decimal


def btc_row(**overrides: Any) -> dict[str, Any]:
    """BitUnix's documented BTCUSDT example (docs/bitunix.md#sample-pair), as from_precisions
    arguments."""
    row: dict[str, Any] = dict(
        symbol="BTCUSDT",
        base="BTC",
        quote="USDT",
        base_precision=4,
        quote_precision=1,
        min_qty=D("0.0001"),
        max_limit_qty=D("100000"),
        max_market_qty=D("50000"),
        min_leverage=1,
        max_leverage=125,
        default_leverage=20,
        min_buy_price_offset=D("-0.95"),
        max_sell_price_offset=D("100"),
        price_protect_scope=D("0.02"),
        status=PairStatus.OPEN,
        api_supported=True,
    )
    row.update(overrides)
    return row


def btc(**overrides: Any) -> PairRules:
    return PairRules.from_precisions(**btc_row(**overrides))


def doge(**overrides: Any) -> PairRules:
    """basePrecision 0 with a minimum of 53 and a 7-decimal price, as seen live."""
    return btc(
        **{
            "symbol": "DOGEUSDT",
            "base": "DOGE",
            "base_precision": 0,
            "quote_precision": 7,
            "min_qty": D("53"),
            "max_limit_qty": D("5000000"),
            "max_market_qty": D("2000000"),
            **overrides,
        }
    )


def _amount(places: int) -> st.SearchStrategy[Decimal]:
    return st.integers(min_value=1, max_value=10**9).map(lambda n: D(n).scaleb(-places))


@st.composite
def pair_rules(draw: st.DrawFn, status: PairStatus | None = PairStatus.OPEN) -> PairRules:
    base_precision = draw(st.integers(0, 10))
    quote_precision = draw(st.integers(0, 10))
    min_qty = draw(_amount(draw(st.integers(0, 12))).filter(lambda d: d < 10**6))
    max_limit = min_qty * draw(st.integers(1, 10**6)) + D(1)
    max_market = min_qty * draw(st.integers(1, 10**6)) + D(1)
    return PairRules.from_precisions(
        symbol="TESTUSDT",
        base="TEST",
        quote="USDT",
        base_precision=base_precision,
        quote_precision=quote_precision,
        min_qty=min_qty,
        max_limit_qty=max_limit,
        max_market_qty=max_market,
        min_leverage=1,
        max_leverage=125,
        default_leverage=20,
        min_buy_price_offset=draw(st.none() | st.sampled_from([D("-0.95"), D("-0.5"), D(-1)])),
        max_sell_price_offset=draw(st.none() | st.sampled_from([D("100"), D("0.5"), D(0)])),
        price_protect_scope=draw(st.none() | st.sampled_from([D("0.02"), D("0.1"), D(0)])),
        status=status if status is not None else draw(st.sampled_from(list(PairStatus))),
        api_supported=True,
    )


def positive_decimals(max_places: int = 12, max_value: int = 10**7) -> st.SearchStrategy[Decimal]:
    """Positive Decimals with up to `max_places` decimals, at most `max_value`."""
    return st.integers(0, max_places).flatmap(
        lambda places: st.integers(1, max_value * 10**places).map(lambda n: D(n).scaleb(-places))
    )
