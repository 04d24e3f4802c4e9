from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from exchange.budget import JITTER_MARGIN_S, Budget, SlidingWindow, rate_for

PLACE = "/api/v1/futures/trade/place_order"
CANCEL = "/api/v1/futures/trade/cancel_orders"
TICKERS = "/api/v1/futures/market/tickers"


class FakeTime:
    """A clock that only moves when the budget sleeps (or the test says so)."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def budget(t: FakeTime, share: str = "1", scale: str = "1") -> Budget:
    return Budget(share=Decimal(share), scale=Decimal(scale), clock=t.clock, sleep=t.sleep)


@pytest.mark.parametrize(
    ("path", "rate"),
    [
        (PLACE, 10),
        (CANCEL, 5),
        ("/api/v1/futures/trade/flash_close_position", 5),
        ("/api/v1/futures/account/adjust_position_margin", 5),
        ("/api/v1/futures/trade/batch_order", 1),
        ("/api/v1/futures/trade/close_all_position", 1),
        (TICKERS, 10),
        ("/api/v1/futures/position/get_pending_positions", 10),
    ],
)
def test_bitunix_default_rates(path: str, rate: int) -> None:
    assert rate_for(path, share=Decimal(1), scale=Decimal(1)) == rate


def test_share_and_scale_multiply_the_rate() -> None:
    assert rate_for(PLACE, share=Decimal("0.5"), scale=Decimal(1)) == 5
    assert rate_for(CANCEL, share=Decimal("0.5"), scale=Decimal(100)) == 250


async def test_first_ten_go_at_once_the_eleventh_waits_a_window() -> None:
    t = FakeTime()
    b = budget(t)
    waits = [await b.acquire(PLACE) for _ in range(11)]
    assert waits[:10] == [0.0] * 10
    assert waits[10] == pytest.approx(1.0 + JITTER_MARGIN_S)
    assert t.slept == [pytest.approx(1.0 + JITTER_MARGIN_S)]


async def test_endpoints_have_separate_budgets() -> None:
    t = FakeTime()
    b = budget(t)
    for _ in range(5):
        assert await b.acquire(CANCEL) == 0
    assert await b.acquire(PLACE) == 0  # cancel's budget is spent, place's is not
    assert await b.acquire(CANCEL) > 0


async def test_half_share_halves_the_burst() -> None:
    t = FakeTime()
    b = budget(t, share="0.5")
    waits = [await b.acquire(PLACE) for _ in range(6)]
    assert waits[:5] == [0.0] * 5 and waits[5] > 0


async def test_rate_below_one_per_second_spaces_requests() -> None:
    t = FakeTime()
    b = budget(t, share="0.5")
    assert await b.acquire("/api/v1/futures/trade/batch_order") == 0
    assert await b.acquire("/api/v1/futures/trade/batch_order") == pytest.approx(
        2.0 + JITTER_MARGIN_S
    )


async def test_budget_refills_as_time_passes_without_sleeping() -> None:
    t = FakeTime()
    b = budget(t)
    for _ in range(10):
        await b.acquire(PLACE)
    t.now += 1.0 + JITTER_MARGIN_S
    assert await b.acquire(PLACE) == 0
    assert t.slept == []


def test_bad_share_or_scale_is_refused() -> None:
    with pytest.raises(ValueError):
        Budget(share=Decimal("1.5"))
    with pytest.raises(ValueError):
        Budget(share=Decimal(0))
    with pytest.raises(ValueError):
        Budget(scale=Decimal(0))


@given(
    rate=st.decimals(min_value=Decimal("0.2"), max_value=Decimal(50), places=2),
    gaps=st.lists(st.floats(min_value=0, max_value=0.7), min_size=1, max_size=80),
)
def test_no_one_second_window_ever_holds_more_than_the_rate(rate: Decimal, gaps) -> None:
    """Whatever the arrival pattern, granted times never exceed floor(rate) (at least 1) in any
    window of one second: the exchange's limit holds for this process's share."""
    window = SlidingWindow(rate)
    now = 0.0
    grants = []
    for gap in gaps:
        now += gap
        grants.append(now + window.reserve(now))
    grants.sort()
    allowed = max(1, int(rate))
    for i, start in enumerate(grants):
        in_window = [g for g in grants[i:] if g < start + 1.0]
        assert len(in_window) <= allowed


def test_a_recorded_send_counts_in_the_window() -> None:
    """What was sent on slots granted elsewhere (the shared budget) fills this window too."""
    w = SlidingWindow(Decimal(2))
    w.record(1000.0)
    w.record(1000.5)
    assert w.reserve(1000.6) == pytest.approx(1000.0 + w.window_s - 1000.6)


def test_a_record_never_dates_before_the_newest_grant() -> None:
    w = SlidingWindow(Decimal(2))
    w.record(1000.0)
    w.record(999.0)  # out of order: counted as sent with the newest, the safe side
    assert w.reserve(1000.0) == pytest.approx(w.window_s)


async def test_a_request_cancelled_while_it_waits_gives_its_slot_back() -> None:
    """A request cancelled while it waits for its slot sent nothing: the next request gets
    that slot, not one a window later (unused, it went by empty while the retry queued)."""
    import asyncio

    t = FakeTime()
    held = asyncio.Event()
    wakes: list[float] = []

    async def sleep(seconds: float) -> None:
        wakes.append(t.now + seconds)
        await held.wait()

    b = Budget(clock=t.clock, sleep=sleep)
    for _ in range(10):  # this window's ten
        await b.acquire(PLACE)
    queued = [asyncio.create_task(b.acquire(PLACE)) for _ in range(10)]  # the next window's
    await asyncio.sleep(0)
    next_window = wakes[0]
    assert wakes == [next_window] * 10
    queued[3].cancel()
    with pytest.raises(asyncio.CancelledError):
        await queued[3]
    late = asyncio.create_task(b.acquire(PLACE))
    await asyncio.sleep(0)
    assert len(wakes) == 11, "the next request went at once, an eleventh in a full window"
    assert wakes[-1] == next_window, "the next request waited a window behind an unused slot"
    after = asyncio.create_task(b.acquire(PLACE))  # the slot is taken: a window later
    await asyncio.sleep(0)
    assert wakes[-1] > next_window
    for task in (*queued, late, after):
        task.cancel()
    await asyncio.gather(*queued, late, after, return_exceptions=True)
