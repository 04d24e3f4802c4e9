"""Starts that go behind the answer. In a candle-close burst (every alert of a watch-list in the
same second) Temporal's start is what is slow: waiting for 200 of them before answering left
TradingView's 3 s behind. While more alerts are in hand than intake.QUEUE_AFTER_IN_FLIGHT, an
open is recorded QUEUED (durable: its row and its trade's, in the same transaction as ever), is
answered 202 at once, and its workflow is started here, a few at a time, once the answers owed
have gone out (at most 3 s later: HOLD_WHILE_BUSY_S) (docs/design.md#starts-queued-behind-the-answer).

What this keeps:
- Dedupe: the workflow id is the alert's, and a QUEUED row holds its key like an ACCEPTED one.
- Order: starts of one strategy and symbol go out in the order their alerts were recorded; an
  exit for a queued open starts that open at once (`hurry`) and is delivered after it.
- Durability: a queued start that Temporal refuses becomes NOT_STARTED; one whose process died
  stays QUEUED. The outbox starts both from their record (or ends them REFUSED when too old),
  but never one this process still holds (`holds`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import metrics
from webhook.plans import StartPlan

log = logging.getLogger("webhook")
# Starts in flight at once: enough to keep Temporal busy, few enough that it still answers the
# requests that are not starts (and the next alerts' own work) while the queue drains.
CONCURRENT_STARTS = 8
# While the intake still has a burst in hand, a queued start waits, at most TradingView's 3 s:
# each start sets the worker and Temporal to work on its trade, and on two cores that CPU is
# what the answers still owed were waiting for (measured: the webhook needs ~12 ms of CPU per
# alert, a trade ~110 ms across the worker and Temporal).
HOLD_WHILE_BUSY_S = 3.0  # float-ok: seconds
DRAIN_S = 5.0  # float-ok: seconds a stopping webhook gives its queued starts


@dataclass
class _Queued:
    plan: StartPlan
    task: asyncio.Task[None] | None = None
    hurried: list[asyncio.Task[None]] = field(default_factory=list)


class StartQueue:
    """`start(plan)`: start the trade's workflow and record the outcome (never raises for
    Temporal: it records NOT_STARTED instead)."""

    def __init__(self, start: Callable[[StartPlan], Awaitable[None]], *,
                 concurrency: int = CONCURRENT_STARTS,
                 hold_s: float = HOLD_WHILE_BUSY_S) -> None:  # float-ok: seconds
        self._start = start
        self._hold_s = hold_s
        self._calm = asyncio.Event()  # set: no burst in hand (the intake says: `busy`)
        self._calm.set()
        self._slots = asyncio.Semaphore(concurrency)
        self._queued: dict[str, _Queued] = {}  # by workflow id
        self._last: dict[tuple[str, str], asyncio.Task[None]] = {}  # by (strategy, symbol)

    def __len__(self) -> int:
        return len(self._queued)

    def submit(self, plan: StartPlan) -> None:
        key = (plan.input.strategy.name, plan.input.symbol)
        before = self._last.get(key)
        entry = _Queued(plan)
        self._queued[plan.workflow_id] = entry
        entry.task = asyncio.create_task(self._run(entry, before),
                                         name=f"start {plan.workflow_id}")
        self._last[key] = entry.task
        metrics.start_queue_depth(len(self._queued))

    def has(self, strategy: str, symbol: str) -> bool:
        """Whether starts of this strategy and symbol are still queued here."""
        return (strategy, symbol) in self._last

    def holds(self, signal_id: int) -> bool:
        """Whether this process still has the start of this alert in hand."""
        return any(q.plan.signal_id == signal_id for q in self._queued.values())

    async def hurry(self, workflow_id: str, budget_s: float) -> bool:  # float-ok: seconds
        """An exit for a queued open: start it now rather than in its turn (a start is
        idempotent: the queue's own start then finds it started). False when it is not
        queued here, or did not start within `budget_s`."""
        entry = self._queued.get(workflow_id)
        if entry is None:
            return False
        hurried = asyncio.create_task(self._start(entry.plan))
        entry.hurried.append(hurried)
        try:
            await asyncio.wait_for(asyncio.shield(hurried), budget_s)
        except TimeoutError:
            return False
        return True

    def busy(self, bursting: bool) -> None:
        """The intake, as its alerts in hand change: whether answers are still owed."""
        if bursting:
            self._calm.clear()
        else:
            self._calm.set()

    async def _answers_first(self) -> None:
        try:
            await asyncio.wait_for(self._calm.wait(), self._hold_s)
        except TimeoutError:
            pass  # a burst that lasts: starts go on anyway, or trades would wait for its end

    async def join(self, timeout_s: float) -> bool:  # float-ok: seconds
        """Wait until every start queued so far is made (or given up); False on timeout."""
        tasks = self._tasks()
        if not tasks:
            return True
        _, pending = await asyncio.wait(tasks, timeout=timeout_s)
        return not pending

    def _tasks(self) -> list[asyncio.Task[None]]:
        return [t for q in self._queued.values() for t in (q.task, *q.hurried) if t is not None]

    async def aclose(self, drain_s: float = DRAIN_S) -> None:  # float-ok: seconds
        """At shutdown: the queue gets `drain_s` to finish; starts not made by then stay QUEUED
        in the database, for the outbox (of the next process) to start from their record."""
        tasks = self._tasks()
        await self.join(drain_s)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._queued.clear()
        self._last.clear()

    async def _run(self, entry: _Queued, before: asyncio.Task[None] | None) -> None:
        plan = entry.plan
        try:
            if before is not None:
                await asyncio.wait([before])  # whatever became of it: its turn has passed
            await self._answers_first()
            async with self._slots:
                await self._start(plan)
        except Exception:  # noqa: BLE001 - the row stays QUEUED: the outbox starts it
            log.exception("queued start of trade #%s failed; the outbox takes it up",
                          plan.trade_id)
        finally:
            self._queued.pop(plan.workflow_id, None)
            metrics.start_queue_depth(len(self._queued))
            key = (plan.input.strategy.name, plan.input.symbol)
            if self._last.get(key) is entry.task:
                del self._last[key]
