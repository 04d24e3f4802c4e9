"""The tests' one polling helper: wait for a condition instead of sleeping a fixed time."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import TypeVar

T = TypeVar("T")


class NotYet(AssertionError):
    """A polled condition did not hold within its time budget (a test failure)."""


async def eventually(
    probe: Callable[[], Awaitable[T | None]],
    what: str = "the condition",
    timeout_s: float = 60.0,
    *,
    interval_s: float = 0.1,
    not_yet: tuple[type[Exception], ...] = (),
    give_up: Callable[[], str | None] | None = None,
    detail: Callable[[], str] | None = None,
) -> T:
    """Await `probe()` every `interval_s` until it returns something truthy, and return that.

    Fails with NotYet (an AssertionError naming `what` and the last value) once `timeout_s` has
    passed; the probe always runs at least once, and once more after the deadline. A probe that
    raises one of `not_yet` counts as "not yet" (the exception is the last value); any other
    exception propagates. `give_up`, checked before each probe, returns a reason to fail at
    once (say, the process being waited on exited). `detail` adds context to a failure.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    last: object = None

    def failure(message: str) -> NotYet:
        return NotYet(f"{message}\n{detail()}" if detail is not None else message)

    while True:
        reason = give_up() if give_up is not None else None
        if reason is not None:
            raise failure(f"gave up waiting for {what}: {reason}")
        try:
            value = await probe()
        except not_yet as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if loop.time() > deadline:
            raise failure(f"timed out after {timeout_s} s waiting for {what} (last: {last!r})")
        await asyncio.sleep(interval_s)
