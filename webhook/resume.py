"""Answering an `untracked_trade` incident: a new run of the trade's workflow
(docs/design.md#resuming-a-trade). The account's policy (webhook/responder.py) and an operator
(`POST /incidents/{id}/resume`, `tradewire incidents resume`) both come here.

The new run has the trade's own workflow id (Temporal allows it once the earlier run has
closed; one still running is left alone), rebuilds its ledger from its rows and tracks it. The
incident clears once a signal of the watcher reaches the running workflow.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Incident, Signal, Strategy, Trade
from trading.types import IncidentAction, IncidentKind, IncidentStatus, Intent, TradeStatus
from webhook import queries
from webhook.adoption import NO_STRATEGY, AdoptionRefused
from webhook.deps import AppState
from webhook.temporal import start_trade
from workflows.contract import Resume, StrategySnapshot, TradeInput
from workflows.messages import CloseRequest, TradeMessages

log = logging.getLogger("webhook.resume")
# A resumed run is found running by the watcher's next signals (every round); an incident still
# open this long after a resume is resumed again.
SETTLES_WITHIN = timedelta(seconds=60)


UNKNOWN_POSITION = ("trade #{trade} owns quantity but its position id was never recorded (a "
                    "trade recorded before position ids were kept): resuming it could take "
                    "another trade's position. Close it at the exchange, then dismiss the "
                    "incident")


class NotResumable(Exception):
    """The trade's workflow is gone and it cannot be resumed safely (the message says why)."""


def resumable(trade: Trade) -> bool:
    """Whether a new run can tell the trade's quantity apart: it owns none, or its row names
    the position it is in."""
    return trade.filled_qty <= trade.closed_qty or trade.position_id is not None


@dataclass(frozen=True)
class Resumption:
    incident_id: int
    trade_id: int
    workflow_id: str
    by: str
    number: int


def resumptions(row: Incident) -> list[dict]:
    return [a for a in row.actions if a.get("action") == IncidentAction.RESUME.value]


def recent(row: Incident, now: datetime) -> bool:
    """Whether the incident was resumed within SETTLES_WITHIN (its new run may not have been
    signalled yet)."""
    done = resumptions(row)
    return bool(done) and now - datetime.fromisoformat(done[-1]["at"]) < SETTLES_WITHIN


def untracked_workflow_id(row: Incident) -> str:
    """The trade's workflow id, from the incident's fingerprint (`untracked_trade:<id>`)."""
    return row.fingerprint.split(":", 1)[1]


async def begin(session: AsyncSession, incident_id: int, *, by: str,
                note: str | None = None) -> Resumption:
    """In the caller's transaction: check the incident is an open untracked trade and record
    the resume on it. AdoptionRefused (404/409) says what is wrong."""
    row = await session.get(Incident, incident_id, with_for_update=True)
    if row is None:
        raise AdoptionRefused(404, f"no incident #{incident_id}")
    if row.kind != IncidentKind.UNTRACKED_TRADE:
        raise AdoptionRefused(409, (
            f"incident #{incident_id} is {row.kind}: only an untracked trade can be resumed"))
    if row.status != IncidentStatus.OPEN:
        raise AdoptionRefused(409, f"incident #{incident_id} is {row.status}, not open")
    now = datetime.now(UTC)
    if recent(row, now):
        raise AdoptionRefused(409, f"incident #{incident_id} was resumed less than "
                                   f"{SETTLES_WITHIN.seconds} s ago; give it time to be seen")
    workflow_id = untracked_workflow_id(row)
    trade = await session.scalar(select(Trade).where(Trade.workflow_id == workflow_id))
    if trade is None:
        raise AdoptionRefused(409, f"no trade has the workflow id {workflow_id}")
    if TradeStatus(trade.status).is_final:
        raise AdoptionRefused(409, f"trade #{trade.id} has ended ({trade.status})")
    if not resumable(trade):
        raise AdoptionRefused(409, UNKNOWN_POSITION.format(trade=trade.id))
    number = len(resumptions(row)) + 1
    row.actions = [*row.actions, {
        "at": now.isoformat(), "by": by, "action": IncidentAction.RESUME.value,
        "note": (f"trade #{trade.id} ({workflow_id}) resumed: a new run rebuilds its books "
                 "from its rows and tracks it" + (f": {note}" if note else "")),
        "trade_id": trade.id, "workflow_id": workflow_id, "attempt": number,
    }]
    return Resumption(row.id, trade.id, workflow_id, by, number)


async def start(state: AppState, r: Resumption) -> None:
    """Start the new run; TemporalUnavailable when Temporal does not take it."""
    await _start(state, r.trade_id, r.workflow_id, Resume(
        incident_id=r.incident_id, by=r.by, stop_pct=state.settings.adopt_stop_pct))
    log.warning("incident #%d: trade #%d (%s) resumed", r.incident_id, r.trade_id, r.workflow_id)


async def resume_to_close(state: AppState, trade_id: int, workflow_id: str,
                          request: CloseRequest) -> bool:
    """An exit for an open trade whose workflow is gone: a new run that gets the exit with its
    start (a run that is going after all just gets the signal). Never "nothing to close" for
    quantity the trade still owns. False: the trade's row has ended meanwhile (its workflow
    recorded the end just before it completed), so there is nothing to close."""
    async with state.sessionmaker() as session:
        trade = await session.get(Trade, trade_id)
    if trade is None or TradeStatus(trade.status).is_final:
        return False
    if not resumable(trade):
        raise NotResumable(UNKNOWN_POSITION.format(trade=trade.id))
    await _start(state, trade_id, workflow_id, Resume(by="exit alert",
                                                     stop_pct=state.settings.adopt_stop_pct),
                 with_signal=(TradeMessages.CLOSE, request))
    log.warning("trade #%d (%s): its workflow was gone; resumed to take the exit", trade_id,
                workflow_id)
    return True


async def _start(state: AppState, trade_id: int, workflow_id: str, how: Resume,
                 with_signal: tuple[str, CloseRequest] | None = None) -> None:
    async with state.sessionmaker() as session:
        trade = await session.get(Trade, trade_id)
        assert trade is not None
        namespace = await queries.install_id(session)
        snapshot = StrategySnapshot(name=NO_STRATEGY)
        if trade.strategy_id is not None:
            row = await session.get(Strategy, trade.strategy_id)
            if row is not None:
                snapshot = StrategySnapshot.model_validate(row, from_attributes=True)
        if await had_exit_plan(session, trade, snapshot):
            how = how.model_copy(update={"exit_plan_dropped": True})
    inp = TradeInput(
        trade_id=trade.id, signal_id=trade.signal_id, strategy=snapshot, symbol=trade.symbol,
        intent=Intent(trade.intent), received_at=trade.created_at,
        client_id_namespace=namespace, resume=how,
    )
    client = await state.temporal.try_connect()
    await start_trade(client, state.settings, workflow_id, inp, eager=False, resuming=True,
                      with_signal=with_signal)


async def had_exit_plan(session: AsyncSession, trade: Trade,
                         snapshot: StrategySnapshot) -> bool:
    """Whether the trade's alert, or its strategy's default, gave it an exit plan."""
    if snapshot.exits is not None and not snapshot.exits.empty:
        return True
    if trade.signal_id is None:
        return False
    signal = await session.get(Signal, trade.signal_id)
    body = (signal.body if signal is not None else None) or {}
    return any(body.get(name) is not None for name in ("tps", "trail_pct"))


async def resume(state: AppState, incident_id: int, *, by: str,
                 note: str | None = None) -> Resumption:
    async with state.sessionmaker() as session, session.begin():
        r = await begin(session, incident_id, by=by, note=note)
    await start(state, r)
    return r
