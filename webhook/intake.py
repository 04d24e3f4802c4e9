"""One delivery, end to end: decide and record it in one transaction (decide.py), then carry
out the plan in Temporal and shape the answer. The exchange is never called on this path."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

import logs
import metrics
from activities import notify
from trading.types import NotifyEvent, SignalOutcome, TradeStatus
from webhook import queries, resume
from webhook.auth import TRADINGVIEW_IPS
from webhook.decide import decide
from webhook.deps import AppState
from webhook.plans import ClosePlan, DuplicatePlan, Plan, Refused, Settled, StartPlan
from webhook.queries import Delivery, OpenTradeRow
from webhook.ratelimit import AnonymousLimiter, RateLimiter
from webhook.start_queue import StartQueue
from webhook.temporal import (
    ANSWER_BUDGET_S,
    ANSWER_MARGIN_S,
    StartUncertain,
    TemporalUnavailable,
    WorkflowGone,
    signal,
    start_trade,
    started,
    wait_started,
)
from workflows.messages import CloseRequest, TradeMessages

RATE_LIMITED = 429  # a strategy over its alerts per minute (webhook/decide.py)
# An exit alert's targets told at once, at most this many at a time (a strategy may hold many
# open trades on a symbol; each delivery is a Temporal call or two).
CLOSE_CONCURRENCY = 16
# How an exit reached one target (`Intake._close_one`).
_CLOSING, _GONE, _UNSTARTED, _STRANDED = "closing", "gone", "unstarted", "stranded"

log = logging.getLogger("webhook")


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)


# An eager start runs the trade's first steps in this process. While more alerts than this are
# being handled, new trades start through the task queue (the main worker) instead, so this
# process spends itself on answering: in a 100/s burst with every start eager, answers took
# over a minute.
EAGER_MAX_IN_FLIGHT = 2


def eager_now(plan_eager: bool, in_flight: int) -> bool:
    """Whether to ask Temporal for an eager start (the trade runs here first) now."""
    return plan_eager and in_flight <= EAGER_MAX_IN_FLIGHT


# While more alerts than this are being handled (a burst), a new open is answered from its
# durable record and started behind the answer (webhook/start_queue.py): in a 200-alert candle
# close, waiting for each start left most answers past TradingView's 3 s. One alert at a time
# is still answered once Temporal took its start, as before.
QUEUE_AFTER_IN_FLIGHT = EAGER_MAX_IN_FLIGHT


class Intake:
    """The alert endpoint's work, one instance per process (it owns the rate limiter)."""

    def __init__(self, state: AppState, key: bytes, limiter: RateLimiter | None = None,
                 *, queue_after: int = QUEUE_AFTER_IN_FLIGHT) -> None:
        self.state = state
        self.key = key
        self.limiter = limiter or RateLimiter()
        settings = state.settings
        self.anonymous = AnonymousLimiter(
            burst=settings.anonymous_burst,
            per_min=settings.anonymous_per_min,
            recorded_per_min=settings.anonymous_recorded_per_min,
            max_addresses=settings.anonymous_tracked_addresses,
            exempt=() if settings.anonymous_limit_tradingview else TRADINGVIEW_IPS,
        )
        self.in_flight = 0  # alerts being handled now
        self.queue_after = queue_after
        self.starts = StartQueue(self._start_queued)

    def bursting(self) -> bool:
        """More alerts in hand than one at a time: answers first (StartQueue)."""
        return self.in_flight > self.queue_after

    def _queue_start(self, strategy: str, symbol: str) -> bool:
        """Whether a new trade of `strategy` on `symbol` is queued: in a burst, or behind
        starts of the same strategy and symbol still queued (a start made now would overtake
        them: a reverse would find the open it closes not started yet)."""
        return self.bursting() or self.starts.has(strategy, symbol)

    def throttled(self, source_ip: str | None) -> Answer | None:
        """429 for an address that has sent too many deliveries without a valid secret, before
        anything else is done for it (its body is not even read); None to go on."""
        wait = self.anonymous.wait(source_ip)
        if wait is None:
            return None
        return Answer(
            429,
            _anonymous(
                "too many deliveries without a valid secret from this address: retry in "
                f"{wait:.0f} s"
            ),
            {"Retry-After": str(max(1, round(wait)))},
        )

    async def handle(self, raw: bytes, source_ip: str | None, received_at: datetime) -> Answer:
        self.in_flight += 1
        self.starts.busy(self.bursting())
        try:
            return await self._handle(raw, source_ip, received_at)
        finally:
            self.in_flight -= 1
            self.starts.busy(self.bursting())

    async def _handle(self, raw: bytes, source_ip: str | None, received_at: datetime) -> Answer:
        d = Delivery(received_at=received_at, source_ip=source_ip)
        # The time by which the answer must be on its way (the sender's patience).
        deadline = asyncio.get_running_loop().time() + ANSWER_BUDGET_S - ANSWER_MARGIN_S
        try:
            async with self.state.sessionmaker.begin() as session:
                try:
                    plan = await decide(
                        session, d, raw, self.key, self.limiter, self.state.warm_venue,
                        account_limits=self.state.settings.risk_limits,
                        queue_start=self._queue_start,
                    )
                except Refused as refused:
                    if refused.anonymous:
                        return await self._refuse_anonymous(session, d, refused)
                    signal_id = await queries.insert_signal(
                        session, d, SignalOutcome.REFUSED, refused.stored
                    )
                    log.info("alert refused (signal #%s): %s", signal_id, refused.stored)
                    if d.strategy_id is not None and refused.status != RATE_LIMITED:
                        # Authenticated, so the operator's own alert (a flood of them is
                        # rate-limited first, and those refusals are not notified).
                        await notify.enqueue(session, NotifyEvent.ALERT_REFUSED, {
                            "signal_id": signal_id, "strategy": d.strategy_name,
                            "symbol": d.symbol, "reason": refused.stored,
                        }, strategy_id=d.strategy_id)
                    return Answer(
                        refused.status, _refusal(refused.public, signal_id), refused.headers
                    )
        except DBAPIError as exc:
            return _not_recorded(exc)
        return await self.carry_out(plan, deadline)

    async def _refuse_anonymous(
        self, session: AsyncSession, d: Delivery, refused: Refused
    ) -> Answer:
        """A refusal before the secret was accepted: it spends the address's anonymous budget,
        is recorded only within the per-minute cap, and its answer carries no signal_id (the
        global counter would tell an outsider how many alerts the operator receives)."""
        if self.anonymous.refused(d.source_ip):
            await queries.insert_signal(session, d, SignalOutcome.REFUSED, refused.stored)
            log.info("alert refused before authentication: %s", refused.stored)
        return Answer(refused.status, _anonymous(refused.public), refused.headers)

    async def refuse_unread(self, d: Delivery, status: int, reason: str) -> Answer:
        """Record a delivery refused before its body was read (too large, or cut off by its
        sender's disconnect): anonymous, as nothing in it was checked."""
        try:
            async with self.state.sessionmaker.begin() as session:
                return await self._refuse_anonymous(
                    session, d, Refused(status, reason, anonymous=True)
                )
        except DBAPIError as exc:
            return _not_recorded(exc)

    async def carry_out(self, plan: Plan, deadline: float) -> Answer:  # float-ok: loop time
        """`deadline`: the event loop's time by which the answer must be sent."""
        logs.bind(signal_id=getattr(plan, "signal_id", None),
                  trade_id=getattr(plan, "trade_id", None),
                  workflow_id=getattr(plan, "workflow_id", None))
        if isinstance(plan, Settled):
            return Answer(plan.status, plan.body)
        if isinstance(plan, StartPlan):
            return await self._start(plan, deadline)
        if isinstance(plan, ClosePlan):
            return await self._close(plan, deadline)
        return await self._duplicate(plan, deadline)

    async def _start(self, plan: StartPlan, deadline: float) -> Answer:  # float-ok: loop time
        if plan.queued:
            # Durable already (recorded QUEUED): answered now, started behind the answer.
            self.starts.submit(plan)
            metrics.queued_start("queued")
            log.info("trade #%s recorded; its start is queued: %s", plan.trade_id,
                     plan.workflow_id)
            return Answer(202, self._accepted(plan) | {"start": "queued"})
        try:
            await self._start_durably(plan, deadline)
        except TemporalUnavailable as exc:
            reason = (
                f"not started: Temporal unavailable ({exc}); the alert is recorded and a "
                "redelivery starts it under the same workflow id"
            )
            await self._set(plan.signal_id, outcome=SignalOutcome.NOT_STARTED.value, reason=reason)
            log.warning("trade #%s not started: %s", plan.trade_id, exc)
            return Answer(
                503,
                {
                    "outcome": SignalOutcome.NOT_STARTED.value,
                    "reason": reason,
                    "signal_id": plan.signal_id,
                    "trade_id": plan.trade_id,
                },
            )
        log.info("trade #%s started: %s", plan.trade_id, plan.workflow_id)
        return Answer(202, self._accepted(plan))

    def _accepted(self, plan: StartPlan) -> dict[str, Any]:
        return {
            "outcome": SignalOutcome.ACCEPTED.value,
            "signal_id": plan.signal_id,
            "trade_id": plan.trade_id,
            "workflow_id": plan.workflow_id,
            "ui_url": self.state.settings.workflow_url(plan.workflow_id),
            "intent": plan.input.intent.value,
            "symbol": plan.input.symbol,
        }

    async def _start_queued(self, plan: StartPlan) -> None:
        """A queued start (StartQueue): ACCEPTED once Temporal took it; NOT_STARTED, for the
        outbox to start from its record, when it did not."""
        loop = asyncio.get_running_loop()
        try:
            await self._start_durably(plan, loop.time() + ANSWER_BUDGET_S)
        except TemporalUnavailable as exc:
            reason = (f"not started: Temporal unavailable ({exc}); the alert is recorded and "
                      "the outbox starts it under the same workflow id")
            await self._settle_queued(plan, SignalOutcome.NOT_STARTED, reason)
            metrics.queued_start("not_started")
            log.warning("queued trade #%s not started: %s", plan.trade_id, exc)
            return
        await self._settle_queued(plan, SignalOutcome.ACCEPTED, None)
        metrics.queued_start("started")
        log.info("trade #%s started (queued): %s", plan.trade_id, plan.workflow_id)

    async def _settle_queued(self, plan: StartPlan, outcome: SignalOutcome,
                             reason: str | None) -> None:
        try:
            async with self.state.sessionmaker.begin() as session:
                await queries.settle_queued(session, plan.signal_id, outcome, reason)
        except DBAPIError as exc:  # stays QUEUED: the outbox looks at it again
            log.error("signal #%s not updated: %s", plan.signal_id,
                      type(exc.orig or exc).__name__)

    async def _start_durably(self, plan: StartPlan, deadline: float) -> None:  # float-ok: loop time
        """Start the trade; after a start that timed out, whether its workflow exists decides
        (Temporal, overloaded, may have started it and lost only the answer)."""
        client = await self.state.temporal.try_connect()
        try:
            await start_trade(
                client, self.state.settings, plan.workflow_id, plan.input,
                eager=eager_now(plan.eager, self.in_flight),
            )
        except StartUncertain:
            budget = deadline - asyncio.get_running_loop().time()
            if client is None or not await started(client, plan.workflow_id, budget):
                raise
            log.warning("trade #%s: the start timed out but its workflow exists", plan.trade_id)

    async def _close(self, plan: ClosePlan, deadline: float) -> Answer:  # float-ok: loop time
        # Every target is told at once (CLOSE_CONCURRENCY at a time): one by one, an exit to
        # 50 trades took 6 s to answer on a loaded machine, past TradingView's 3 s, and the
        # last trade heard of its exit that late. Each target's own steps keep their order.
        gate = asyncio.Semaphore(CLOSE_CONCURRENCY)

        async def one(trade: OpenTradeRow) -> tuple[str, str | None]:
            async with gate:
                return await self._close_one(plan, trade, deadline)

        # Every target's delivery runs to its end (none is cut short half way by another's
        # failure); the answer is decided once all are known.
        results = await asyncio.gather(*(one(t) for t in plan.targets), return_exceptions=True)
        unavailable = next((r for r in results if isinstance(r, TemporalUnavailable)), None)
        failed = next((r for r in results if isinstance(r, BaseException)
                       and not isinstance(r, TemporalUnavailable)), None)
        if failed is not None:
            raise failed
        if unavailable is not None:
            reason = (
                f"not delivered: Temporal unavailable ({unavailable}); a redelivery of this "
                "exit alert tries again"
            )
            await self._set(plan.signal_id, outcome=SignalOutcome.NOT_STARTED.value, reason=reason)
            return Answer(
                503, _refusal(reason, plan.signal_id) | {"outcome": SignalOutcome.NOT_STARTED.value}
            )
        closing, gone, unstarted = [], [], []
        stranded: list[str] = []  # open trades whose workflow is gone and cannot resume
        for trade, result in zip(plan.targets, results, strict=True):
            assert not isinstance(result, BaseException)
            kind, why = result
            if kind == _STRANDED:
                stranded.append(why or "")
            else:
                {_CLOSING: closing, _GONE: gone, _UNSTARTED: unstarted}[kind].append(trade)
        if unstarted:
            # Never "nothing to close" for a trade that may still start: this exit is its.
            reason = (
                "not delivered: "
                + ", ".join(f"trade #{t.id}" for t in unstarted)
                + " has not started yet; a redelivery of this exit alert tries again"
            )
            await self._set(plan.signal_id, outcome=SignalOutcome.NOT_STARTED.value, reason=reason)
            return Answer(
                503, _refusal(reason, plan.signal_id) | {"outcome": SignalOutcome.NOT_STARTED.value}
            )
        if stranded and not closing:
            reason = "not delivered: " + "; ".join(stranded)
            await self._set(plan.signal_id, outcome=SignalOutcome.REFUSED.value, reason=reason)
            return Answer(409, _refusal(reason, plan.signal_id))
        if not closing:
            reason = (
                "nothing to close: "
                + ", ".join(f"trade #{t.id}" for t in gone)
                + " already finished"
            )
            await self._set(
                plan.signal_id, outcome=SignalOutcome.NOTHING_TO_CLOSE.value, reason=reason
            )
            return Answer(
                200,
                {
                    "outcome": SignalOutcome.NOTHING_TO_CLOSE.value,
                    "reason": reason,
                    "signal_id": plan.signal_id,
                },
            )
        settings = self.state.settings
        return Answer(
            202,
            {
                "outcome": SignalOutcome.ACCEPTED.value,
                "signal_id": plan.signal_id,
                **({"reason": plan.note} if plan.note else {}),
                "closing": [
                    {
                        "trade_id": t.id,
                        "workflow_id": t.workflow_id,
                        "ui_url": settings.workflow_url(t.workflow_id),
                    }
                    for t in closing
                ],
            },
        )

    async def _close_one(self, plan: ClosePlan, trade: OpenTradeRow, deadline: float  # float-ok: loop time
                         ) -> tuple[str, str | None]:
        """Deliver the exit to one target: (_CLOSING | _GONE | _UNSTARTED | _STRANDED, why).
        TemporalUnavailable when Temporal did not take it."""
        request = plan.request_for(trade)
        if await self.send_close(trade.workflow_id, request, raise_unavailable=True):
            return _CLOSING, None
        if trade.status != TradeStatus.PENDING.value:
            # Its row is open, its workflow gone: resumed with the exit, unless the row ended
            # meanwhile (docs/design.md#resuming-a-trade).
            try:
                resumed = await resume.resume_to_close(
                    self.state, trade.id, trade.workflow_id, request)
            except resume.NotResumable as exc:
                return _STRANDED, str(exc)
            return (_CLOSING if resumed else _GONE), None
        # PENDING and no workflow: its open's start is still in flight (another request).
        # Wait for it within the answer's budget, then close it.
        if await self._close_once_started(trade.workflow_id, request, deadline):
            return _CLOSING, None
        return _UNSTARTED, None

    async def _duplicate(self, plan: DuplicatePlan, deadline: float) -> Answer:  # float-ok: loop time
        holder = plan.holder
        # A redelivery while its start is queued here: that start is on its way, in its turn.
        if plan.restart is not None and not self.starts.holds(plan.restart.signal_id):
            answer = await self._start(plan.restart, deadline)
            if answer.status == 503:
                return answer
        body: dict[str, Any] = {
            "outcome": SignalOutcome.DUPLICATE.value,
            "signal_id": plan.signal_id,
            "duplicate_of": holder.signal_id,
            "workflow_id": holder.workflow_id,
        }
        if holder.trade_id is not None:
            body["trade_id"] = holder.trade_id
        if holder.workflow_id is not None:
            body["ui_url"] = self.state.settings.workflow_url(holder.workflow_id)
        return Answer(200, body)

    async def _close_once_started(
        self, workflow_id: str, request: CloseRequest, deadline: float  # float-ok: loop time
    ) -> bool:
        budget = deadline - asyncio.get_running_loop().time()
        # Its open may be queued here (a burst): started now, before this exit goes to it.
        await self.starts.hurry(workflow_id, budget)
        client = await self.state.temporal.try_connect()
        budget = deadline - asyncio.get_running_loop().time()
        if client is None or not await wait_started(client, workflow_id, budget):
            return False
        return await self.send_close(workflow_id, request, raise_unavailable=True)

    async def send_close(
        self, workflow_id: str, request: CloseRequest, raise_unavailable: bool = False
    ) -> bool:
        client = await self.state.temporal.try_connect()
        try:
            await signal(client, self.state.settings, workflow_id, TradeMessages.CLOSE, request)
            return True
        except WorkflowGone:
            return False
        except TemporalUnavailable as exc:
            if raise_unavailable:
                raise
            log.warning("close for %s not delivered: %s", workflow_id, exc)
            return False

    async def _set(self, signal_id: int, **values: Any) -> None:
        try:
            async with self.state.sessionmaker.begin() as session:
                await queries.set_signal(session, signal_id, **values)
        except DBAPIError as exc:
            log.error("signal #%s not updated: %s", signal_id, type(exc.orig or exc).__name__)


def _anonymous(reason: str) -> dict[str, Any]:
    return {"outcome": SignalOutcome.REFUSED.value, "reason": reason}


def _refusal(reason: str, signal_id: int) -> dict[str, Any]:
    return {"outcome": SignalOutcome.REFUSED.value, "reason": reason, "signal_id": signal_id}


def _not_recorded(exc: DBAPIError) -> Answer:
    log.error("alert not recorded: database error %s", type(exc.orig or exc).__name__)
    return Answer(503, {"outcome": "NOT_RECORDED", "reason": "database unavailable: retry"})
