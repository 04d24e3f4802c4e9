"""The account's request budget shared through PostgreSQL (db/budget_ledger.py, migration 0012,
exchange/shared_budget.py): holders with pools of their own never exceed an endpoint's limit
together in any window, one holder alone gets the whole limit, and a database that does not
answer leaves each holder its own share (docs/design.md#request-budgets).

Counts, never durations: every grant is stamped with the holder's clock when its request may go,
and the property checked is the sliding window's (at most `capacity` stamps in any `window_s`).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from db.budget_ledger import BudgetLedger, Lease
from exchange.budget import Budget, SlidingWindow, rate_for
from exchange.shared_budget import LEASE_S, SEND_MARGIN_S, SharedBudget

PLACE = "/api/v1/futures/trade/place_order"
CANCEL = "/api/v1/futures/trade/cancel_orders"
DOWN_URL = "postgresql+psycopg://postgres@/nosuchdb?host=/nonexistent-socket-dir"


class FakeTime:
    """A clock that moves only when a holder sleeps; the ledger is told this time too."""

    def __init__(self) -> None:
        self.now = 1_000_000.0

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds


class AtFakeTime:
    """The real ledger, reading the test's clock instead of the database's."""

    def __init__(self, ledger: BudgetLedger, t: FakeTime) -> None:
        self.ledger, self.t = ledger, t

    async def lease(self, endpoint: str, **kwargs: Any) -> Lease:
        return await self.ledger.lease(endpoint, now=self.t.now, **kwargs)


@pytest.fixture
def clean_budget(db_url: str) -> Iterator[str]:
    """The session's database with no endpoint's slots leased yet."""
    engine = create_engine(db_url)
    try:
        with engine.begin() as conn:
            conn.execute(text("DELETE FROM exchange_budget"))
    finally:
        engine.dispose()
    yield db_url


@pytest.fixture
async def ledgers(clean_budget: str) -> AsyncIterator[list[BudgetLedger]]:
    """Two ledgers, each on a pool of its own (two processes' worth)."""
    found = [BudgetLedger.connect(clean_budget), BudgetLedger.connect(clean_budget)]
    yield found
    for ledger in found:
        await ledger.aclose()


def holder(ledger: Any, t: FakeTime | None = None, share: str = "1",
           scale: str = "1") -> SharedBudget:
    fallback = Budget(share=Decimal(share), scale=Decimal(scale),
                      **({"clock": t.clock, "sleep": t.sleep} if t else {}))
    if t is None:
        return SharedBudget(ledger, fallback=fallback)
    return SharedBudget(AtFakeTime(ledger, t), fallback=fallback, clock=t.clock, sleep=t.sleep)


def most_in_a_window(stamps: list[float], window_s: float) -> int:
    stamps = sorted(stamps)
    return max(sum(1 for s in stamps[i:] if s < start + window_s)
               for i, start in enumerate(stamps))


def limit(path: str, scale: str = "1") -> SlidingWindow:
    return SlidingWindow(rate_for(path, share=Decimal(1), scale=Decimal(scale)),
                         margin_s=SEND_MARGIN_S)


async def test_one_holder_alone_gets_the_whole_limit(ledgers: list[BudgetLedger]) -> None:
    """Not a share: ten place_order requests go at once; the eleventh waits for the first
    slot's lease and window to end."""
    t = FakeTime()
    budget = holder(ledgers[0], t)
    waits = [await budget.acquire(PLACE) for _ in range(11)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(LEASE_S + limit(PLACE).window_s)


async def test_two_holders_take_turns_within_one_limit(ledgers: list[BudgetLedger]) -> None:
    """Two holders with budgets of their own would each send 10 in the first window; sharing
    the account's, they send 10 between them in any window, and the endpoints stay separate."""
    t = FakeTime()
    a, b = holder(ledgers[0], t), holder(ledgers[1], t)
    stamps: list[float] = []
    for k in range(40):
        await (a if k % 2 else b).acquire(PLACE)
        stamps.append(t.now)
    window = limit(PLACE)
    assert most_in_a_window(stamps, window.window_s) == window.capacity
    assert sum(1 for s in stamps if s == stamps[0]) == window.capacity  # the first window, full
    assert await a.acquire(CANCEL) == 0.0  # place's budget is spent, cancel's is not


async def test_concurrent_holders_never_exceed_the_limit_in_any_window(
    ledgers: list[BudgetLedger],
) -> None:
    """Two holders on the real clock, each with 40 requests waiting at once (leases of many
    slots, future slots, slots that may pass before use): every request gets a slot, and the
    stamps of both together never hold more than the limit in any window."""
    scale = "2"  # 20 per window: a few windows' worth in seconds
    stamps: list[float] = []

    async def one(budget: SharedBudget) -> None:
        await budget.acquire(PLACE)
        stamps.append(time.monotonic())

    a, b = holder(ledgers[0], scale=scale), holder(ledgers[1], scale=scale)
    await asyncio.gather(*(one(h) for h in (a, b) for _ in range(40)))
    window = limit(PLACE, scale)
    assert len(stamps) == 80
    assert most_in_a_window(stamps, window.window_s) <= window.capacity


async def test_a_database_that_does_not_answer_leaves_each_holder_its_share() -> None:
    """No database: requests still go (closes and stops must), at this holder's own share."""
    ledger = BudgetLedger.connect(DOWN_URL)
    try:
        t = FakeTime()
        budget = holder(ledger, t, share="0.5")
        waits = [await budget.acquire(PLACE) for _ in range(6)]
    finally:
        await ledger.aclose()
    assert waits[:5] == [0.0] * 5
    assert waits[5] > 0


async def test_the_fallback_counts_what_was_sent_on_leased_slots(
    ledgers: list[BudgetLedger],
) -> None:
    """A holder that used the shared budget and then loses the database does not start its
    own share with a fresh burst on top of what it just sent."""
    t = FakeTime()
    gone = BudgetLedger.connect(DOWN_URL)
    ledger = Switch(AtFakeTime(ledgers[0], t))
    budget = SharedBudget(ledger, fallback=Budget(share=Decimal("0.5"), clock=t.clock,
                                                  sleep=t.sleep), clock=t.clock, sleep=t.sleep)
    try:
        for _ in range(5):
            assert await budget.acquire(PLACE) == 0.0
        ledger.to = AtFakeTime(gone, t)  # the database is gone
        assert await budget.acquire(PLACE) > 0
    finally:
        await gone.aclose()


class Switch:
    """A ledger the test can swap for another (the database going away)."""

    def __init__(self, to: AtFakeTime) -> None:
        self.to = to

    async def lease(self, endpoint: str, **kwargs: Any) -> Lease:
        return await self.to.lease(endpoint, **kwargs)


class Lagging(AtFakeTime):
    """The real ledger, whose answers this process reads `lag_s` late (a busy event loop)."""

    def __init__(self, ledger: BudgetLedger, t: FakeTime, lag_s: float) -> None:
        super().__init__(ledger, t)
        self.lag_s = lag_s
        self.asked: list[float] = []

    async def lease(self, endpoint: str, **kwargs: Any) -> Lease:
        self.asked.append(kwargs["lease_s"])
        answer = await super().lease(endpoint, **kwargs)
        self.t.now += self.lag_s
        return answer


async def test_a_lease_read_after_it_ended_is_given_up_and_the_next_is_longer(
    ledgers: list[BudgetLedger],
) -> None:
    """An answer read after its slots ended is never used (the request would go outside its
    slot), nor taken for a dead database (the shares of the fallback may add up to more than
    the limit): the next lease lasts twice the round trip, and the request goes on it."""
    t = FakeTime()
    ledger = Lagging(ledgers[0], t, lag_s=0.3)
    budget = SharedBudget(ledger, fallback=Budget(share=Decimal("0.1"), clock=t.clock,
                                                  sleep=t.sleep), clock=t.clock, sleep=t.sleep)
    for _ in range(3):
        await budget.acquire(PLACE)
    assert ledger.asked == [pytest.approx(LEASE_S), pytest.approx(0.6), pytest.approx(0.6),
                            pytest.approx(0.6)]


class HeldTime(FakeTime):
    """A clock that stands still while a holder waits for a slot: the wait ends only when the
    test says (or the waiter is cancelled). `wakes`: when each wait would have ended."""

    def __init__(self) -> None:
        super().__init__()
        self.wakes: list[float] = []
        self.asleep = asyncio.Event()  # set when a waiter starts its wait
        self.release = asyncio.Event()

    async def sleep(self, seconds: float) -> None:
        self.wakes.append(self.now + seconds)
        self.asleep.set()
        await self.release.wait()
        self.now += seconds


class CountingLeases:
    def __init__(self, inner: Any) -> None:
        self.inner, self.count = inner, 0

    async def lease(self, endpoint: str, **kwargs: Any) -> Lease:
        self.count += 1
        return await self.inner.lease(endpoint, **kwargs)


async def test_a_request_cancelled_while_it_waits_for_its_slot_gives_the_slot_back(
    ledgers: list[BudgetLedger],
) -> None:
    """A request cancelled while it waits for its slot (a placement whose activity timed out in
    a candle close's queue) sent nothing: its slot goes back to this process, and the next
    request takes it, in its turn. Kept, it went unused while the retry queued behind it: with
    200 placements behind BitUnix's 10/s, the slots of timed-out attempts went by empty, the
    retries timed out in turn, and orders stopped reaching the exchange."""
    t = HeldTime()
    leases = CountingLeases(AtFakeTime(ledgers[0], t))
    budget = SharedBudget(leases, fallback=Budget(clock=t.clock, sleep=t.sleep),
                          clock=t.clock, sleep=t.sleep)
    for _ in range(limit(PLACE).capacity):  # this window's slots: no wait
        await budget.acquire(PLACE)
    first = asyncio.create_task(budget.acquire(PLACE))
    await asyncio.wait_for(t.asleep.wait(), 10)
    t.asleep.clear()
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    leased = leases.count
    second = asyncio.create_task(budget.acquire(PLACE))
    await asyncio.wait_for(t.asleep.wait(), 10)
    assert t.wakes[1] == t.wakes[0], "the next request queued behind an unused slot"
    assert leases.count == leased
    t.release.set()
    await second
