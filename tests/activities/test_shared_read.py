"""activities.shared_read.SharedRead: trade checks woken together share one exchange read, and
never take one that started before they allow."""

from __future__ import annotations

import asyncio
import time

import pytest

from activities.shared_read import SharedRead


class Reads:
    def __init__(self) -> None:
        self.count = 0
        self.gate = asyncio.Event()

    async def read(self) -> int:
        self.count += 1
        await self.gate.wait()
        return self.count


async def test_checks_waiting_together_share_one_read() -> None:
    reads = Reads()
    shared = SharedRead(reads.read)
    start = time.time()
    waiting = [asyncio.ensure_future(shared.get(start)) for _ in range(50)]
    await asyncio.sleep(0)
    reads.gate.set()
    assert await asyncio.gather(*waiting) == [1] * 50
    assert reads.count == 1
    assert await shared.get(start) == 1  # still recent enough for this caller


async def test_a_check_never_takes_a_read_older_than_it_allows() -> None:
    reads = Reads()
    reads.gate.set()
    shared = SharedRead(reads.read)
    assert await shared.get(time.time()) == 1
    # A check scheduled after the last read started (here: a second later) reads again.
    assert await shared.get(time.time() + 1) == 2
    assert reads.count == 2


async def test_a_failed_read_is_not_reused() -> None:
    calls = 0

    async def read() -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise RuntimeError("exchange down")
        return calls

    shared = SharedRead(read)
    start = time.time()
    with pytest.raises(RuntimeError):
        await shared.get(start)
    assert await shared.get(start) == 2


async def test_checks_that_come_while_a_read_is_under_way_share_the_next_one() -> None:
    """A read under way started too early for checks that come now (a trade's first check
    wants a position read started after its order sync): they share the one read that starts
    when it ends, rather than one read each beside it. In a candle close under BitUnix's 10
    requests/s, 200 new trades' checks were 200 position reads."""
    reads = Reads()
    shared = SharedRead(reads.read)
    first = asyncio.ensure_future(shared.get(time.time()))
    await asyncio.sleep(0.01)
    assert reads.count == 1  # under way
    later = []
    for _ in range(20):  # one after another, as the trades' checks come
        later.append(asyncio.ensure_future(shared.get(time.time())))
        await asyncio.sleep(0.002)
    assert reads.count == 1, "the later checks read beside the read under way, one each"
    reads.gate.set()
    assert await first == 1
    assert await asyncio.gather(*later) == [2] * 20
    assert reads.count == 2


async def test_the_next_read_starts_after_the_checks_asked() -> None:
    """What the later checks share starts when the read under way ends: after every one of
    them asked, so it shows the exchange as they need it."""
    started: list[float] = []
    gate = asyncio.Event()

    async def read() -> float:
        started.append(time.time())
        await gate.wait()
        return started[-1]

    shared = SharedRead(read)
    first = asyncio.ensure_future(shared.get(time.time()))
    await asyncio.sleep(0.01)
    asked = time.time()
    later = asyncio.ensure_future(shared.get(asked))
    await asyncio.sleep(0.01)
    gate.set()
    await first
    assert await later >= asked
