"""Tracking cost: checks on the trades' own timers share the exchange reads, so open trades on
several symbols cost a fixed number of requests per shared read, not one per trade or symbol
(issue 24, deliverable 6). Counted in the paper exchange's request log, never timed."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from decimal import Decimal

from tests.workflows.harness import Harness, strategy
from trading.types import TradeStatus
from workflows.contract import Sizing
from workflows.tracking import timer_read_age_ms

# symbol → (price, quantity): four symbols, so reads per symbol would show as four times those
# of one shared read.
PAIRS = {
    "BTCUSDT": (Decimal("95000"), Decimal("0.001")),
    "ETHUSDT": (Decimal("3000"), Decimal("0.01")),
    "SOLUSDT": (Decimal("150"), Decimal("0.1")),
    "XRPUSDT": (Decimal("0.5"), Decimal("10")),
}
PER_SYMBOL = 8
INTERVAL_S = 4  # the trades' own re-check; its reads may be timer_read_age_ms(4) = 2 s old
WINDOW_S = 12  # three intervals: every trade re-checks at least twice in it
SHARED = ("market/tickers", "tpsl/get_pending_orders", "position/get_pending_positions")


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


async def test_open_trades_on_four_symbols_share_one_read_of_each_kind(harness: Harness) -> None:
    """32 protected trades on 4 symbols, no watcher: over a window holding at least two of each
    trade's own re-checks, each endpoint a check reads is asked at most once per shared read
    (one per 2 s, plus the reads under way at either end), not once per symbol."""
    h = harness
    strat = strategy(tracking_interval_s=INTERVAL_S)
    for symbol, (price, _) in PAIRS.items():
        await h.paper.admin.set_price(symbol, str(price))
    for _ in range(PER_SYMBOL):
        for symbol, (price, qty) in PAIRS.items():
            handle = await h.trade(symbol=symbol, sizing=Sizing(size=qty),
                                   tp=price * Decimal("1.05"), sl=price * Decimal("0.95"),
                                   strat=strat)
            # One at a time: the placements are not what this test counts.
            await h.until_state(handle, protected, f"{symbol} trade protected")
    await asyncio.sleep(INTERVAL_S)  # the last trades' first re-checks are under way
    start = time.time_ns()
    await asyncio.sleep(WINDOW_S)
    log = [r for r in await h.paper.admin.requests(start)
           if r["t_ns"] < start + WINDOW_S * 1_000_000_000]
    by_path = Counter(r["path"].removeprefix("/api/v1/futures/") for r in log)
    shared_reads = WINDOW_S * 1000 // timer_read_age_ms(INTERVAL_S) + 2
    assert by_path["position/get_pending_positions"] >= 2, by_path  # the trades did check
    print("requests in the window:", dict(by_path))
    assert {p: by_path[p] for p in SHARED if by_path[p] > shared_reads} == {}, (shared_reads,
                                                                                  by_path)
    statuses = Counter([(await h.state(hd)).status for hd in h.started])
    assert statuses == {TradeStatus.TRACKING: len(PAIRS) * PER_SYMBOL}, statuses
