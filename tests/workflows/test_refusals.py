"""Trades that end before anything fills: a rule the exchange enforces (after one refresh of the
pair's rules), insufficient margin, an alert that is too old."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import update

from db.models import TradingPair
from tests.workflows.harness import Harness
from trading.types import TradeStatus
from workflows.contract import Sizing

BTC = "BTCUSDT"


async def test_rule_rejection_refreshes_the_rules_once_then_refuses(harness: Harness) -> None:
    h = harness
    # Our stored rules are out of date: SOLUSDT's step and minimum are really 0.01.
    async with h.sessionmaker() as session, session.begin():
        await session.execute(update(TradingPair).where(TradingPair.symbol == "SOLUSDT")
                              .values(qty_step=Decimal("0.001"), min_qty=Decimal("0.001")))
    handle = await h.trade(symbol="SOLUSDT", sizing=Sizing(size=Decimal("0.005")))
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED and result.filled_qty == 0
    assert "min_qty" in (result.error or "")
    async with h.sessionmaker() as session:
        pair = await session.get(TradingPair, "SOLUSDT")
    assert pair is not None and pair.qty_step == Decimal("0.01")  # refreshed from the exchange
    assert len(await h.place_requests()) == 1  # the refused one; the re-validation sent nothing
    st = await h.state(handle)
    assert any("refreshing the pair's rules once" in w for w in st.warnings)


async def test_insufficient_margin_fails_with_the_exchange_message(harness: Harness) -> None:
    h = harness
    handle = await h.trade(sizing=Sizing(size=Decimal("500")))
    result = await h.result(handle)
    assert result.status is TradeStatus.FAILED and "20003" in (result.error or "")
    assert (await h.trade_row(handle)).error == result.error


async def test_an_alert_older_than_its_max_age_is_refused_unsent(harness: Harness) -> None:
    h = harness
    handle = await h.trade(sizing=Sizing(size=Decimal("0.01")),
                           alert_time=datetime.now(UTC) - timedelta(minutes=5))
    result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED and "max alert age" in (result.error or "")
    assert not await h.placed_by(handle)
