"""The entry's venue reads against the paper exchange over HTTP: started early by `warm`,
reused by alerts received at most their kind's MAX_AGE after the read started, joined while in
flight, read again after a failure, and never cancelled by one of the entries sharing them."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import SecretStr

from activities.venue_reads import LEVERAGE, MAX_AGE, TICKER, VenueReader
from exchange.errors import Unavailable

BTC = "BTCUSDT"
VENUE_PATHS = (
    "account", "account/get_leverage_margin_mode", "market/tickers", "market/depth",
)


async def _venue_requests(paper, since_ns: int) -> list[str]:
    return [r["path"].removeprefix("/api/v1/futures/")
            for r in await paper.admin.requests(since_ns)
            if r["path"].removeprefix("/api/v1/futures/") in VENUE_PATHS]


async def test_a_warmed_read_serves_the_alert_that_warmed_it(paper, paper_client) -> None:
    reader = VenueReader(paper_client)
    since = time.time_ns()
    arrived = datetime.now(UTC)
    reader.warm(BTC)
    reads = await reader.read(BTC, not_before=arrived)
    again = await reader.read(BTC, not_before=arrived)
    assert again == reads
    assert reads.ticker is not None and reads.ticker.symbol == BTC
    assert reads.config.symbol == BTC and reads.book.best_bid is not None
    assert sorted(await _venue_requests(paper, since)) == sorted(VENUE_PATHS)


async def test_reads_serve_alerts_within_their_max_age_and_no_later(paper, paper_client) -> None:
    reader = VenueReader(paper_client)
    since = time.time_ns()
    first = datetime.now(UTC)
    await reader.read(BTC, not_before=first)
    await reader.read(BTC, not_before=first + timedelta(milliseconds=500))  # shared
    assert len(await _venue_requests(paper, since)) == len(VENUE_PATHS)
    later = first + MAX_AGE[TICKER] + timedelta(milliseconds=100)
    await reader.read(BTC, not_before=later)  # all but the leverage are read again
    paths = await _venue_requests(paper, since)
    assert len(paths) == 2 * len(VENUE_PATHS) - 1
    assert paths.count("account/get_leverage_margin_mode") == 1
    much_later = first + MAX_AGE[LEVERAGE] + timedelta(seconds=1)
    await reader.read(BTC, not_before=much_later)
    assert (await _venue_requests(paper, since)).count("account/get_leverage_margin_mode") == 2


async def test_sizing_by_margin_share_reads_the_account_and_leverage_after_its_alert(
    paper, paper_client
) -> None:
    """Margin × leverage sizes the entry: both are read after the alert (review finding 15)."""
    reader = VenueReader(paper_client)
    arrived = datetime.now(UTC)
    await reader.read(BTC, not_before=arrived)
    since = time.time_ns()
    await reader.read(BTC, not_before=datetime.now(UTC), fresh_account=True)
    assert sorted(await _venue_requests(paper, since)) == [
        "account", "account/get_leverage_margin_mode"]


async def test_sizing_by_margin_share_sees_a_leverage_another_process_changed(
    paper, paper_client
) -> None:
    """The webhook's fast path and the worker are two processes, and a trader may change the
    leverage in BitUnix's app: a cached read would size with the old leverage."""
    from exchange.client import BitunixClient

    reader = VenueReader(paper_client)
    before = (await reader.read(BTC, not_before=datetime.now(UTC))).config.leverage
    other = BitunixClient(paper_client.base_url, paper.api_key, SecretStr(paper.api_secret))
    try:
        await other.change_leverage(BTC, before + 1)
        reads = await reader.read(BTC, not_before=datetime.now(UTC), fresh_account=True)
        assert reads.config.leverage == before + 1
    finally:
        await other.change_leverage(BTC, before)
        await other.aclose()


async def test_alerts_that_arrive_together_share_the_reads_in_flight(paper, paper_client) -> None:
    reader = VenueReader(paper_client)
    since = time.time_ns()
    arrived = datetime.now(UTC)
    first, second = await asyncio.gather(reader.read(BTC, arrived), reader.read(BTC, arrived))
    assert first == second
    assert len(await _venue_requests(paper, since)) == len(VENUE_PATHS)


async def test_a_failed_read_is_read_again_and_the_others_are_kept(paper, paper_client) -> None:
    reader = VenueReader(paper_client)
    arrived = datetime.now(UTC)
    since = time.time_ns()
    await paper.admin.faults(http_5xx=1)  # the next request answers 503
    try:
        with pytest.raises(Unavailable):
            await reader.read(BTC, arrived)
        reads = await reader.read(BTC, arrived)
    finally:
        await paper.admin.clear_faults()
    assert reads.ticker is not None
    # Four reads, one of which failed and was sent once more: nothing else was re-sent.
    assert len(await _venue_requests(paper, since)) == len(VENUE_PATHS) + 1


async def test_one_cancelled_entry_leaves_the_shared_reads_to_the_others(paper, paper_client) -> None:
    reader = VenueReader(paper_client)
    arrived = datetime.now(UTC)
    await paper.admin.faults(latency_ms=200)
    try:
        cancelled = asyncio.ensure_future(reader.read(BTC, arrived))
        kept = asyncio.ensure_future(reader.read(BTC, arrived))
        await asyncio.sleep(0.05)
        cancelled.cancel()
        reads = await kept
    finally:
        await paper.admin.clear_faults()
    assert cancelled.cancelled()
    assert reads.ticker is not None


async def test_forget_makes_the_next_leverage_read_fresh(paper, paper_client) -> None:
    reader = VenueReader(paper_client)
    arrived = datetime.now(UTC)
    await reader.read(BTC, arrived)
    since = time.time_ns()
    reader.forget(BTC)
    await reader.read(BTC, arrived)
    assert await _venue_requests(paper, since) == ["account/get_leverage_margin_mode"]

