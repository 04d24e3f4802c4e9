"""One exchange read shared by the callers that need it at about the same time.

A caller says how old a read it accepts (`not_before`, wall-clock seconds): it gets the latest
read if that started no earlier, joining it while it runs. Otherwise, when a read is under way
(too old for it), it gets the read that starts as soon as that one ends, shared by every caller
that comes meanwhile: one read per round trip, not one per caller (in a candle close under
BitUnix's 10 requests/s, 200 new trades' checks each wanting a position read started after
their order sync were 200 reads). With nothing under way, a new read starts at once. A read
that failed is never handed out again. Callers are shielded from each other: one that is
cancelled does not cancel the read the others wait for.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class SharedRead(Generic[T]):
    def __init__(self, read: Callable[[], Awaitable[T]]) -> None:
        self._read = read
        self._started = 0.0  # float-ok: a wall-clock time, not money
        self._task: asyncio.Future[T] | None = None
        self._next: asyncio.Future[T] | None = None  # starts when the read under way ends

    def start(self, not_before: float) -> asyncio.Future[T]:  # float-ok: wall-clock seconds
        """The read this caller may use, started now or when the one under way ends if none
        qualifies (not awaited)."""
        task = self._task
        failed = task is not None and task.done() and (task.cancelled() or task.exception())
        if task is not None and not failed and self._started >= not_before:
            return task
        if self._next is not None and not self._next.done():
            return self._next  # it starts later than now, so no earlier than `not_before`
        self._next = None  # none, or it ended before its read (cancelled): never handed out
        if task is not None and not task.done() and not_before <= time.time():
            self._next = asyncio.ensure_future(self._after(task))
            self._next.add_done_callback(_retrieve)
            return self._next
        self._started = time.time()
        task = self._task = asyncio.ensure_future(self._read())
        task.add_done_callback(_retrieve)
        return task

    async def _after(self, under_way: asyncio.Future[T]) -> T:
        await asyncio.wait([under_way])  # whatever became of it
        me = asyncio.current_task()
        if self._next is me:  # not forgotten meanwhile: the latest read from now on
            self._next = None
            self._task, self._started = me, time.time()
        return await self._read()

    async def get(self, not_before: float) -> T:  # float-ok: wall-clock seconds
        return await asyncio.shield(self.start(not_before))

    def forget(self) -> None:
        """The next caller reads afresh (the caller changed what this reads)."""
        self._task = self._next = None


def _retrieve(task: asyncio.Future[object]) -> None:
    """Mark a failure as seen: a read started early (and not awaited) may fail unobserved;
    its next caller reads again."""
    if not task.cancelled():
        task.exception()
