"""The price a trailing stop follows (activities/tracking.py `read_trail_price`): the checks of
every trailing trade on a symbol share one ticker read within their max age, so trailing trades
do not multiply the account's requests. Against the paper exchange over HTTP."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from temporalio.testing import ActivityEnvironment

from activities.contract_tracking import PriceQuery
from activities.orders import OrderActivities
from activities.tracking import TrackingActivities
from trading.types import StopType

BTC = "BTCUSDT"


async def test_trail_price_reads_are_shared_within_their_max_age(
    paper, paper_client, sessionmaker
) -> None:
    await paper.admin.set_price(BTC, "95000")
    orders = OrderActivities(paper_client, sessionmaker, visibility_window=timedelta(seconds=1))
    acts = TrackingActivities(paper_client, sessionmaker, orders)
    env = _now(ActivityEnvironment())
    since = time.time_ns()
    shared = PriceQuery(symbol=BTC, stop_type=StopType.MARK_PRICE, max_age_ms=60_000)
    last = PriceQuery(symbol=BTC, stop_type=StopType.LAST_PRICE, max_age_ms=60_000)
    reads = await asyncio.gather(*(env.run(acts.read_trail_price, q)
                                   for q in [shared] * 4 + [last] * 4))
    assert {r.price for r in reads} == {Decimal("95000")}
    assert len(await _ticker_requests(paper, since)) == 1  # eight trades, one read
    # A read started before the price moved still serves within its max age; none older does.
    await paper.admin.set_price(BTC, "95100")
    assert (await env.run(acts.read_trail_price, shared)).price == Decimal("95000")
    fresh = shared.model_copy(update={"max_age_ms": 0})
    assert (await _now(env).run(acts.read_trail_price, fresh)).price == Decimal("95100")
    assert len(await _ticker_requests(paper, since)) == 2


def _now(env: ActivityEnvironment) -> ActivityEnvironment:
    """The activity scheduled now (what the max age counts from)."""
    env.info = dataclasses.replace(env.info, current_attempt_scheduled_time=datetime.now(UTC))
    return env


async def _ticker_requests(paper, since_ns: int) -> list[dict]:
    return [r for r in await paper.admin.requests(since_ns) if r["path"].endswith("market/tickers")]
