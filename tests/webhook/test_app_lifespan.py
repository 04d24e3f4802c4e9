"""The webhook's background loops (outbox, responder) end when the app stops, even when a
cancellation is lost on the way (Python 3.11's `asyncio.wait_for` drops one that arrives as
its inner call completes: the app's shutdown then waited for ever; seen in the suite)."""

from __future__ import annotations

import asyncio

from webhook.app import stop_task


async def _loop_that_loses_one_cancellation(ticks: list[int]) -> None:
    lost = False
    while True:
        try:
            await asyncio.sleep(0.01)
        except asyncio.CancelledError:
            if lost:
                raise
            lost = True  # what the wait_for race does: the cancellation is swallowed
            asyncio.current_task().uncancel()
        ticks.append(1)


async def test_a_loop_that_lost_a_cancellation_is_stopped_all_the_same() -> None:
    ticks: list[int] = []
    task = asyncio.create_task(_loop_that_loses_one_cancellation(ticks))
    await asyncio.sleep(0.05)
    stopping = asyncio.create_task(stop_task(task))
    done, _ = await asyncio.wait({stopping}, timeout=5)  # never cancels what it waits for
    try:
        assert stopping in done, "the loop was told to stop once and went on"
        assert task.cancelled()
    finally:
        stopping.cancel()
        task.cancel()


async def test_a_loop_that_has_ended_is_left_as_it_is() -> None:
    async def short() -> None:
        await asyncio.sleep(0)

    task = asyncio.create_task(short())
    await task
    await stop_task(task)  # neither cancels nor raises
    assert task.done() and not task.cancelled()
