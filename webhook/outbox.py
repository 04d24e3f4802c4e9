"""Alerts recorded but never started. An alert is durable once recorded; when Temporal does not
take its start the webhook answers 503 NOT_STARTED, and TradingView never redelivers. The outbox
starts such a trade from its durable record once Temporal is back (the same workflow id, so a
late redelivery cannot start a second one), or, when the alert is too old by then, ends it
REFUSED "never started": no trade row stays PENDING forever, and nothing counts as an open
trade that never started (docs/design.md#dedupe-ordering-and-workflow-ids).

An alert recorded ACCEPTED whose process died before its start reached Temporal (SIGKILL,
OOM, power) has no workflow and no answer went out. Once it is older than its strategy's max
alert age (so no request can still be starting it, and a start now would be refused as stale
anyway) and Temporal says its workflow does not exist, it ends REFUSED "never started" too:
it is never traded late, and never left PENDING."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import logs
from db.models import Strategy
from trading.types import Intent, SignalOutcome
from webhook import queries, risk_gate, routing
from webhook.intake import Intake
from webhook.temporal import ANSWER_BUDGET_S, exists
from workflows.messages import CloseRequest

log = logging.getLogger("webhook.outbox")
INTERVAL_S = 5
BATCH = 50
LOOKUP_BUDGET_S = 1.0
# How far past its max alert age an ACCEPTED alert still PENDING is looked at: well past any
# start in flight (a start is given a few seconds), so only a start that never came is found.
STRANDED_MARGIN_S = 15


class Outbox:
    """`grace_s`: an alert younger than this may still be answered by its own request."""

    def __init__(
        self,
        intake: Intake,
        *,
        grace_s: float = 2 * ANSWER_BUDGET_S,  # float-ok: seconds
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._intake = intake
        self._state = intake.state
        self._grace = timedelta(seconds=grace_s)
        self._now = now
        self._stranded_after = 0  # where the next sweep's look for stranded alerts starts

    async def run(self) -> None:
        """Sweep every INTERVAL_S for the app's lifetime; a failed sweep is logged, never fatal."""
        while True:
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - the next sweep tries again; intake goes on
                log.exception("outbox: the sweep failed")
            await asyncio.sleep(INTERVAL_S)

    async def sweep(self) -> int:
        """Start or end every alert not started; returns how many it took up."""
        async with self._state.sessionmaker() as session:
            waiting = await queries.unstarted(session, self._now() - self._grace, BATCH)
            stranded = await queries.stranded(session, self._now(), STRANDED_MARGIN_S, BATCH,
                                              after=self._stranded_after)
        # The next sweep looks past this batch: rows whose workflow does exist (a trade whose
        # worker is away) are taken up by their workflow, never by this sweep, and would
        # otherwise keep a truly stranded alert behind them for good.
        self._stranded_after = stranded[-1].signal_id if len(stranded) == BATCH else 0
        taken = 0
        # Each alert's log lines carry its own ids (logs.bind in carry_out), none of the last.
        for item in waiting:
            if self._intake.starts.holds(item.signal_id):
                continue  # queued in this process (a burst): its start is on its way
            with logs.context(signal_id=item.signal_id):
                taken += await self._take(item)
        for lost in stranded:
            with logs.context(signal_id=lost.signal_id, trade_id=lost.trade_id,
                              workflow_id=lost.workflow_id):
                taken += await self._end_stranded(lost)
        return taken

    async def _end_stranded(self, item: queries.Stranded) -> int:
        """Found by the randomized fault runs (seed 2074): the webhook was SIGKILLed between
        recording an alert ACCEPTED and starting its workflow. Ended, never started late."""
        async with self._state.sessionmaker.begin() as session:
            # Under the lock a redelivery of the alert takes: it cannot start it meanwhile.
            await queries.lock_strategy_symbol(session, item.strategy_id, item.symbol)
            if await self._runs(item.workflow_id) is not False:
                return 0  # it runs (its workflow records it), or Temporal cannot say: never blind
            why = ("never started: the process that recorded the alert stopped before its start "
                   "reached Temporal, and the alert is now older than the strategy's max alert "
                   "age; nothing was sent")
            if not await queries.end_stranded(session, item, why):
                return 0
        log.warning("outbox: trade #%s %s", item.trade_id, why)
        return 1

    async def _runs(self, workflow_id: str | None) -> bool | None:
        """Whether Temporal has this workflow; None: it cannot say now."""
        client = await self._state.temporal.try_connect()
        if client is None or workflow_id is None:
            return None
        return await exists(client, workflow_id, LOOKUP_BUDGET_S)

    async def _take(self, item: queries.Unstarted) -> int:
        async with self._state.sessionmaker.begin() as session:
            # The alerts of one strategy and symbol are serialised, redeliveries included.
            await queries.lock_strategy_symbol(session, item.strategy_id, item.symbol)
            holder = await queries.unstarted_holder(session, item.signal_id)
            strategy = await session.get(Strategy, item.strategy_id)
            if holder is None or strategy is None:
                return 0  # started or ended meanwhile
            alert_time = routing.holder_alert(holder).time
            deadline = (alert_time or holder.received_at) + timedelta(
                seconds=strategy.max_alert_age_s)
            why, exited = None, False
            if self._now() > deadline:
                why = (
                    "never started: Temporal did not take the start before the alert was older "
                    f"than the strategy's max alert age ({strategy.max_alert_age_s} s); nothing "
                    "was sent"
                )
            elif await queries.exit_since(session, item.strategy_id, item.symbol,
                                          routing.side_of(Intent(holder.intent or "")),
                                          holder.received_at, alert_time):
                # Its exit came while it waited (and found nothing to close): the strategy has
                # left this position already; opening it now would leave it open for good.
                why = ("never started: an exit alert for it was recorded before Temporal took "
                       "its start; nothing was sent")
                exited = True
            elif (refusal := await risk_gate.opening_refusal(session, strategy)) is not None:
                # Halted or reduce-only since it was accepted: it is not started now (its
                # claim would refuse the entry; this says why on its own record at once).
                why = f"never started: {refusal}; nothing was sent"
            runs = await self._runs(holder.workflow_id) if why is not None else False
            if runs is None:
                return 0  # Temporal cannot say whether it runs: never end it blind; next sweep
            if runs:
                # Its start had landed after all (the answer was lost and the look-up could not
                # confirm it): the workflow owns the trade and records it; never end it here.
                await queries.set_signal(
                    session, holder.signal_id, outcome=SignalOutcome.ACCEPTED.value,
                    reason="started after all: the start's answer was lost",
                )
                log.warning("outbox: trade #%s had started after all", holder.trade_id)
                if exited:  # the exit was answered "nothing to close" meanwhile: deliver it now
                    await self._intake.send_close(holder.workflow_id, CloseRequest(
                        reason="exit alert recorded before the trade's start was confirmed"))
                return 1
            if why is not None:
                await queries.end_unstarted(session, holder, why)
                log.warning("outbox: trade #%s %s", holder.trade_id, why)
                return 1
            await queries.set_signal(
                session, holder.signal_id, outcome=SignalOutcome.ACCEPTED.value,
                reason=None,
            )
            plan = await routing.plan_start(session, strategy, holder, eager=False)
        loop = asyncio.get_running_loop()
        answer = await self._intake.carry_out(plan, loop.time() + ANSWER_BUDGET_S)
        log.info("outbox: trade #%s from signal #%s: %s", holder.trade_id, holder.signal_id,
                 answer.body.get("outcome"))
        return 1
