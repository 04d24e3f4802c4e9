"""The account's incident policy, applied (TRADEWIRE_INCIDENT_POLICY;
docs/design.md#incident-policies). Every INTERVAL_S it looks at the open unowned-quantity
incidents the account watcher raised:

* `protect` (default): adopt the quantity into a trade with a protective stop
  (TRADEWIRE_ADOPT_STOP_PCT from the mark) that waits for an operator or an exit alert;
* `flatten`: adopt it into a trade that closes it reduce-only at once;
* `report`: nothing (the incident stays open for an operator).

Under `protect` and `flatten` an open `untracked_trade` incident is answered too: the trade gets
a new run of its workflow (webhook/resume.py), which rebuilds its books from its rows.

While the account is HALTED with flatten (`tradewire risk halt --flatten`), `flatten` applies
whatever is configured: the halt asked for the account to be flat, and quantity no trade owns
is closed like the trades' own (docs/design.md#risk).

An attempt whose start Temporal did not take is started again (same workflow id); one that
ended without adopting anything (the gap was gone, or other trades' orders stayed in flight) is
tried again, at most MAX_ATTEMPTS times, while the incident stays open. It runs in the webhook
process beside the outbox; two webhook processes serialize on the incident row.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime

from sqlalchemy import select, update
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError

from activities import notify
from activities.risk import effective_state
from db.models import Incident, Trade
from trading.types import (
    IncidentAction,
    IncidentKind,
    IncidentPolicy,
    IncidentStatus,
    TradeStatus,
    TradingState,
)
from webhook import adoption, resume
from webhook.adoption import MAX_ATTEMPTS, AdoptionRefused, Attempt
from webhook.deps import AppState
from webhook.temporal import TemporalUnavailable

log = logging.getLogger("webhook.responder")
INTERVAL_S = 5
POLICY = "policy"  # the `by` of what the account's policy does
ANSWERED = (IncidentKind.UNOWNED_QUANTITY.value, IncidentKind.UNTRACKED_TRADE.value)


class Responder:
    def __init__(self, state: AppState) -> None:
        self._state = state
        self._given_up: set[int] = set()  # incidents logged as left to an operator

    async def run(self) -> None:
        """Sweep every INTERVAL_S for the app's lifetime; a failed sweep is logged, never fatal."""
        while True:
            try:
                await self.sweep()
            except Exception:  # noqa: BLE001 - the next sweep tries again; intake goes on
                log.exception("incident responder: the sweep failed")
            await asyncio.sleep(INTERVAL_S)

    async def sweep(self) -> list[Attempt]:
        """Answer every open unowned-quantity incident as the policy says; returns the attempts
        started (or started again) by this sweep."""
        policy, why = await self.policy()
        async with self._state.sessionmaker() as session:
            rows = list((await session.scalars(
                select(Incident).where(Incident.status == IncidentStatus.OPEN.value,
                                       Incident.kind.in_(ANSWERED))
                .order_by(Incident.id)
            )).all())
        if policy is not IncidentPolicy.REPORT:
            await self._resume([r for r in rows if r.kind == IncidentKind.UNTRACKED_TRADE], why)
        rows = [r for r in rows if r.kind == IncidentKind.UNOWNED_QUANTITY]
        async with self._state.sessionmaker() as session:
            last = {row.id: adoption.last_attempt(row) for row in rows}
            trades = {a.trade_id: (await session.get(Trade, a.trade_id))
                      for a in last.values() if a is not None}
        out = []
        for row in rows:
            attempt = last[row.id]
            trade = trades.get(attempt.trade_id) if attempt is not None else None
            if attempt is not None and trade is not None and trade.status == TradeStatus.PENDING:
                if await self._ended_unbooked(attempt):
                    continue  # counted; the next sweep tries again (or gives up)
                out.append(attempt)  # written, perhaps never started: start it (again)
                await self._start(attempt)
                continue
            if attempt is not None and (trade is None or not TradeStatus(trade.status).is_final):
                continue  # adopting now: the watcher clears the incident once it is owned
            if policy is IncidentPolicy.REPORT and attempt is None:
                continue
            if attempt is not None and attempt.number >= MAX_ATTEMPTS:
                await self._give_up(row, f"{attempt.number} adoptions ended without adopting "
                                         "it: left to an operator")
                continue
            if policy is IncidentPolicy.REPORT:
                continue  # an operator's attempt ended; the policy does not try again
            started = await self._begin(row.id, close=policy is IncidentPolicy.FLATTEN, why=why)
            if started is not None:
                out.append(started)
        return out

    async def policy(self) -> tuple[IncidentPolicy, str]:
        """The policy that applies now, and how the incident's note says it: the configured
        one, or `flatten` while the account is HALTED with flatten. (Quantity no trade owns
        belongs to no strategy, so only the account's state can say so.)"""
        configured = self._state.settings.incident_policy
        async with self._state.sessionmaker() as session:
            account = await effective_state(session, None)
        if account.state is TradingState.HALTED and account.flatten:
            return IncidentPolicy.FLATTEN, "policy flatten (the account is HALTED with flatten)"
        return configured, f"policy {configured}"

    async def _resume(self, rows: list[Incident], why: str) -> None:
        """Untracked trades get a new run of their workflow (webhook/resume.py), again when
        the incident outlasts a resume by SETTLES_WITHIN, at most MAX_ATTEMPTS times."""
        now = datetime.now(UTC)
        for row in rows:
            done = resume.resumptions(row)
            if resume.recent(row, now):
                continue
            if len(done) >= MAX_ATTEMPTS:
                await self._give_up(row, f"resumed {len(done)} times and still untracked: left "
                                         "to an operator")
                continue
            try:
                await resume.resume(self._state, row.id, by=POLICY, note=why)
            except AdoptionRefused as exc:
                log.info("incident #%d: %s", row.id, exc.message)
            except TemporalUnavailable as exc:
                log.warning("incident #%d: not resumed yet (%s); trying again", row.id, exc)

    async def _begin(self, incident_id: int, *, close: bool, why: str) -> Attempt | None:
        state = self._state
        try:
            async with state.sessionmaker() as session, session.begin():
                attempt = await adoption.begin(session, incident_id, by=POLICY, close=close,
                                               stop_pct=state.settings.adopt_stop_pct, note=why)
        except AdoptionRefused as exc:  # answered meanwhile (an operator, another webhook)
            log.info("incident #%d: %s", incident_id, exc.message)
            return None
        await self._start(attempt)
        return attempt

    async def _give_up(self, row: Incident, why: str) -> None:
        """Said once: in the log (ERROR) and on the incident."""
        if row.id in self._given_up or any(a.get("note") == why for a in row.actions):
            self._given_up.add(row.id)
            return
        self._given_up.add(row.id)
        log.error("incident #%d: %s (`tradewire incidents show %d`)", row.id, why, row.id)
        await self._note(row.id, why)

    async def _note(self, incident_id: int, note: str) -> None:
        async with self._state.sessionmaker() as session, session.begin():
            row = await session.get(Incident, incident_id, with_for_update=True)
            if row is not None:
                row.actions = [*row.actions, {
                    "at": datetime.now(UTC).isoformat(), "by": POLICY,
                    "action": IncidentAction.NOTE.value, "note": note}]

    async def _ended_unbooked(self, attempt: Attempt) -> bool:
        """An attempt whose workflow has closed (terminated, or failed) before it booked
        anything: its trade row would stay PENDING for ever, and the incident unanswered. It is
        ended CANCELLED, which counts the attempt (and lets the next one, or an operator, in)."""
        client = await self._state.temporal.try_connect()
        if client is None:
            return False
        try:
            desc = await client.get_workflow_handle(attempt.workflow_id).describe()
        except RPCError:  # not started yet (or Temporal cannot say): start it
            return False
        if desc.status is None or desc.status == WorkflowExecutionStatus.RUNNING:
            return False
        why = (f"its workflow ended ({desc.status.name}) before it adopted anything")
        async with self._state.sessionmaker() as session, session.begin():
            ended = await session.execute(
                update(Trade).where(Trade.id == attempt.trade_id,
                                    Trade.status == TradeStatus.PENDING.value)
                .values(status=TradeStatus.CANCELLED.value, error=why).returning(Trade.id))
            if ended.first() is not None:
                await notify.trade_ended(session, attempt.trade_id, TradeStatus.CANCELLED, why)
        await self._note(attempt.incident_id,
                         f"attempt {attempt.number} (trade #{attempt.trade_id}): {why}")
        log.warning("incident #%d: attempt %d (trade #%d): %s", attempt.incident_id,
                    attempt.number, attempt.trade_id, why)
        return True

    async def _start(self, attempt: Attempt) -> None:
        try:
            await adoption.start(self._state, attempt)
        except TemporalUnavailable as exc:
            log.warning("incident #%d: trade #%d not started yet (%s); trying again",
                        attempt.incident_id, attempt.trade_id, exc)
