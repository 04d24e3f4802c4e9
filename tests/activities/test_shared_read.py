"""activities.shared_read.SharedRead: trade checks woken together share one exchange read, and
never take one that started before they allow."""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from types import SimpleNamespace

import pytest

from activities import shared_read
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


class Numbered:
    """Reads numbered 1, 2, ... in the order they start; read n sets `began[n]` and returns n
    once `gates[n]` is set."""

    def __init__(self) -> None:
        self.count = 0
        self.began: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)
        self.gates: defaultdict[int, asyncio.Event] = defaultdict(asyncio.Event)

    async def read(self) -> int:
        self.count += 1
        n = self.count
        self.began[n].set()
        await self.gates[n].wait()
        return n


async def test_a_next_read_forgotten_while_it_waits_never_becomes_the_latest(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`forget` while a next read waits for the read under way: a caller after it reads afresh,
    and when the old read ends the forgotten next one (still read for the callers that hold it)
    does not take the place of the reads started since: they stay the latest, and the callers
    that share a next read after them keep sharing it (no read one each beside it)."""
    now = [100.0]
    monkeypatch.setattr(shared_read, "time", SimpleNamespace(time=lambda: now[0]))
    reads = Numbered()
    shared = SharedRead(reads.read)
    old = shared.start(100.0)
    await reads.began[1].wait()
    now[0] = 101.0
    forgotten = shared.start(101.0)  # too old for it: the next read, waiting for read 1
    shared.forget()  # e.g. this process changed the leverage: read 1 shows the old one

    afresh = shared.start(100.0)  # read 1 would do by its age, but it was forgotten
    assert afresh is not old and afresh is not forgotten
    await reads.began[2].wait()  # started after the forget
    now[0] = 103.0
    shared_next = shared.start(103.0)  # too old for it: the next read, waiting for read 2
    assert shared_next is not forgotten

    now[0] = 104.0
    reads.gates[1].set()
    assert await old == 1
    await reads.began[3].wait()  # the forgotten next read is reading: past its take-over point
    assert shared.start(101.0) is afresh, "the forgotten next read became the latest"
    assert shared.start(104.0) is shared_next, "the next read after read 2 was dropped"

    for n in (2, 3, 4):
        reads.gates[n].set()
    assert await asyncio.gather(forgotten, afresh, shared_next) == [3, 2, 4]
    assert reads.count == 4
