"""Pair sync and get_rules against the paper exchange over HTTP and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import update
from temporalio.exceptions import ApplicationError

from activities.pairs import PairActivities
from db.migrate import upgrade
from db.models import TradingPair
from db.session import make_engine, make_sessionmaker
from pair_catalog import known_symbols, sync_pairs
from trading.types import PairStatus

RULE_PATHS = "market/trading_pairs"


async def _pair_requests(paper) -> int:
    return sum(1 for r in await paper.admin.requests() if r["path"].endswith(RULE_PATHS))


@pytest.fixture
async def clean_pairs(empty_db_url: str):
    """A database of its own: the shared one's pair table belongs to every other test."""
    await asyncio.to_thread(upgrade, empty_db_url)
    engine = make_engine(empty_db_url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


async def test_sync_stores_every_pair_exactly_and_reports_changes(paper, paper_client, clean_pairs) -> None:
    first = await sync_pairs(paper_client, clean_pairs)
    assert first.total >= 15 and "ESPUSDT" in first.appeared and not first.changed
    async with clean_pairs() as session:
        btc = await session.get(TradingPair, "BTCUSDT")
        esp = await session.get(TradingPair, "ESPUSDT")
    assert btc is not None and esp is not None
    assert btc.qty_step == Decimal("0.0001") and btc.price_tick == Decimal("0.1")
    assert btc.raw["symbol"] == "BTCUSDT" and "basePrecision" in btc.raw
    assert "ESPUSDT" in await known_symbols(clean_pairs)

    # Someone (an older sync) stored different rules, and a pair the exchange no longer lists.
    async with clean_pairs() as session, session.begin():
        await session.execute(
            update(TradingPair).where(TradingPair.symbol == "BTCUSDT").values(min_qty=Decimal("0.0002"))
        )
        session.add(TradingPair(
            symbol="GONEUSDT", base="GONE", quote="USDT", qty_step=Decimal(1), price_tick=Decimal("0.01"),
            min_qty=Decimal(1), max_limit_qty=Decimal(10), max_market_qty=Decimal(10), min_leverage=1,
            max_leverage=20, default_leverage=10, status="OPEN", api_supported=True, raw={},
            synced_at=datetime.now(UTC),
        ))
    second = await sync_pairs(paper_client, clean_pairs)
    assert second.appeared == []
    assert second.disappeared == ["GONEUSDT"]
    assert second.changed == {"BTCUSDT": ["min_qty: 0.0002 -> 0.0001"]}
    async with clean_pairs() as session:
        gone = await session.get(TradingPair, "GONEUSDT")
        btc = await session.get(TradingPair, "BTCUSDT")
    assert gone is not None and gone.status == PairStatus.STOP
    assert btc is not None and btc.min_qty == Decimal("0.0001")
    third = await sync_pairs(paper_client, clean_pairs)
    assert (third.appeared, third.disappeared, third.changed) == ([], [], {})


async def test_get_rules_uses_the_stored_row_until_stale_or_forced(paper, paper_client, clean_pairs) -> None:
    now = datetime.now(UTC)
    clock = {"now": now}
    acts = PairActivities(paper_client, clean_pairs, now=lambda: clock["now"])
    before = await _pair_requests(paper)
    first = await acts.rules_for("SUSHIUSDT", max_age_s=60, force=False)  # not stored yet: fetched
    assert first.symbol == "SUSHIUSDT" and first.to_rules().symbol == "SUSHIUSDT"
    assert await _pair_requests(paper) == before + 1
    again = await acts.rules_for("SUSHIUSDT", max_age_s=60, force=False)  # fresh: from the table
    assert again == first and await _pair_requests(paper) == before + 1
    await acts.rules_for("SUSHIUSDT", max_age_s=60, force=True)
    assert await _pair_requests(paper) == before + 2
    clock["now"] = now + timedelta(seconds=61)
    stale = await acts.rules_for("SUSHIUSDT", max_age_s=60, force=False)
    assert await _pair_requests(paper) == before + 3
    assert stale.synced_at == clock["now"]


async def test_get_rules_refuses_an_unknown_symbol_without_retrying(paper, paper_client, clean_pairs) -> None:
    acts = PairActivities(paper_client, clean_pairs)
    with pytest.raises(ApplicationError) as err:
        await acts.rules_for("EPUSDT", max_age_s=60, force=False)
    assert err.value.non_retryable and err.value.type == "UnknownSymbol"
    assert "EPUSDT" in str(err.value)


async def test_get_rules_keeps_the_rules_it_read_in_memory_within_their_max_age(
    paper, paper_client, clean_pairs
) -> None:
    """The entry's hot path reads no table row while the rules this process holds are fresh:
    with the row deleted, the same process still answers from memory, a new one fetches."""
    acts = PairActivities(paper_client, clean_pairs)
    first = await acts.rules_for("SUSHIUSDT", max_age_s=60, force=False)
    async with clean_pairs() as session, session.begin():
        await session.delete(await session.get(TradingPair, "SUSHIUSDT"))
    before = await _pair_requests(paper)
    assert await acts.rules_for("SUSHIUSDT", max_age_s=60, force=False) == first
    assert await _pair_requests(paper) == before
    other_process = PairActivities(paper_client, clean_pairs)
    await other_process.rules_for("SUSHIUSDT", max_age_s=60, force=False)
    assert await _pair_requests(paper) == before + 1


async def test_a_forced_refresh_after_a_rule_rejection_logs_what_changed(
    paper, paper_client, clean_pairs, caplog: pytest.LogCaptureFixture
) -> None:
    """The trade workflow forces one refresh of its pair after a rule rejection: that pair is
    re-synced at once (no wait for the hourly sync), and the log says which rule moved."""
    acts = PairActivities(paper_client, clean_pairs)
    stored = await acts.rules_for("SUSHIUSDT", max_age_s=60, force=False)
    async with clean_pairs() as session, session.begin():
        await session.execute(update(TradingPair).where(TradingPair.symbol == "SUSHIUSDT")
                              .values(min_qty=stored.min_qty * 3))
    with caplog.at_level("INFO", logger="activities.pairs"):
        fresh = await acts.rules_for("SUSHIUSDT", max_age_s=60, force=True)
    assert fresh.min_qty == stored.min_qty
    assert (f"pair SUSHIUSDT re-synced (forced): min_qty: {stored.min_qty * 3} -> "
            f"{stored.min_qty}") in caplog.text, caplog.text
    async with clean_pairs() as session:
        row = await session.get(TradingPair, "SUSHIUSDT")
    assert row is not None and row.min_qty == stored.min_qty


class _Listing:
    """An exchange whose pair listing is given: the paper exchange always lists every pair, and
    these cases are about an answer it cannot give (empty, or a row we cannot read)."""

    def __init__(self, wires: list) -> None:
        self.wires = wires

    async def trading_pairs_raw(self, symbols=None) -> list:
        return self.wires


async def test_an_empty_or_unreadable_listing_never_stops_the_stored_pairs(
    paper, paper_client, clean_pairs
) -> None:
    """The hourly sync must not take an empty (or cut) answer for every pair gone, nor a listed
    pair whose row we cannot read for a delisting: either would refuse every entry for an hour."""
    from sqlalchemy import select

    from pair_catalog import EmptyPairList

    async def statuses() -> dict[str, str]:
        async with clean_pairs() as session:
            return {r.symbol: r.status for r in (await session.scalars(select(TradingPair))).all()}

    await sync_pairs(paper_client, clean_pairs)
    before = await statuses()
    with pytest.raises(EmptyPairList):
        await sync_pairs(_Listing([]), clean_pairs)
    assert await statuses() == before
    listed = await paper_client.trading_pairs_raw(None)
    btc = next(w for w in listed if w.symbol == "BTCUSDT")
    odd = btc.model_copy(update={"basePrecision": -1, "quotePrecision": -1})
    report = await sync_pairs(_Listing([odd, *[w for w in listed if w.symbol != "BTCUSDT"]]),
                              clean_pairs)
    assert "BTCUSDT" not in report.disappeared and report.disappeared == []
    assert await statuses() == before  # BTCUSDT keeps its stored rules and status
