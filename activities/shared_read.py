"""One exchange read shared by the callers that need it at about the same time.

A caller says how old a read it accepts (`not_before`, wall-clock seconds): it gets the latest
read if that started no earlier, joining it while it runs; otherwise a new read starts. A read
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

    def start(self, not_before: float) -> asyncio.Future[T]:  # float-ok: wall-clock seconds
        """The read this caller may use, started now if none qualifies (not awaited)."""
        task = self._task
        failed = task is not None and task.done() and (task.cancelled() or task.exception())
        if task is None or failed or self._started < not_before:
            self._started = time.time()
            task = self._task = asyncio.ensure_future(self._read())
            task.add_done_callback(_retrieve)
        return task

    async def get(self, not_before: float) -> T:  # float-ok: wall-clock seconds
        return await asyncio.shield(self.start(not_before))

    def forget(self) -> None:
        """The next caller reads afresh (the caller changed what this reads)."""
        self._task = None


def _retrieve(task: asyncio.Future[object]) -> None:
    """Mark a failure as seen: a read started early (and not awaited) may fail unobserved;
    its next caller reads again."""
    if not task.cancelled():
        task.exception()
