"""Answering an unowned-quantity incident with a trade (docs/design.md#incident-policies): the
account's policy (webhook/responder.py) and an operator (`POST /incidents/{id}/adopt` and
`/flatten`, `tradewire incidents adopt|flatten`) both come here.

An adoption is a trade row plus a `TradeWorkflow` started with `adopt` (workflows/adoption.py):
the workflow books at most the incident's gap as its own, protects it with a stop and tracks it
(or, to flatten, closes it reduce-only at once). The row and the incident's action are written
in one transaction, then the workflow is started under a workflow id made of the incident and
the attempt, so a start repeated after a lost answer or a crash never starts a second one.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Incident, Strategy, Trade, TradingPair
from trading.errors import show
from trading.types import (
    EntryType,
    IncidentAction,
    IncidentKind,
    IncidentStatus,
    Intent,
    PositionSide,
    TradeStatus,
)
from webhook import queries
from webhook.deps import AppState
from webhook.temporal import start_trade
from workflows.contract import Adoption, StrategySnapshot, TradeInput

log = logging.getLogger("webhook.adoption")
ADOPTING = (IncidentAction.ADOPT.value, IncidentAction.FLATTEN.value)
NO_STRATEGY = "adopted"  # the strategy name an adopted trade shows when it was given none
MAX_ATTEMPTS = 3  # automatic attempts per incident; then it waits for an operator


class AdoptionRefused(Exception):
    """The incident cannot be adopted or flattened now; `status` is the HTTP answer."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Attempt:
    """One adoption of an incident: its trade and how it was asked for (kept on the incident's
    action, so a start that did not happen can be made again with the same input)."""

    incident_id: int
    number: int
    trade_id: int
    workflow_id: str
    close: bool
    stop_pct: Decimal
    strategy: str | None
    by: str

    @property
    def action(self) -> IncidentAction:
        return IncidentAction.FLATTEN if self.close else IncidentAction.ADOPT


def workflow_id_for(incident_id: int, attempt: int, install: str) -> str:
    """`adopt-<incident>-<attempt>-<install>`: the install id keeps apart a database that was
    reset (whose incident ids start again) or another installation on the same Temporal
    namespace, whose `adopt-4-1` would otherwise be taken for this one's."""
    return f"adopt-{incident_id}-{attempt}-{install[:8]}"


def attempts(row: Incident) -> list[dict[str, Any]]:
    """The incident's adopt/flatten actions, oldest first."""
    return [a for a in row.actions if a.get("action") in ADOPTING and "trade_id" in a]


def _attempt(row: Incident, action: dict[str, Any]) -> Attempt:
    return Attempt(
        incident_id=row.id, number=int(action["attempt"]), trade_id=int(action["trade_id"]),
        workflow_id=action["workflow_id"], close=action["action"] == IncidentAction.FLATTEN,
        stop_pct=Decimal(action["stop_pct"]), strategy=action.get("strategy"),
        by=action["by"],
    )


async def begin(
    session: AsyncSession, incident_id: int, *, by: str, close: bool, stop_pct: Decimal,
    strategy: str | None = None, note: str | None = None,
) -> Attempt:
    """In the caller's transaction: check the incident can be adopted, write the trade row and
    the incident's action. Raises AdoptionRefused (404/409) with what is wrong."""
    row = await session.get(Incident, incident_id, with_for_update=True)
    if row is None:
        raise AdoptionRefused(404, f"no incident #{incident_id}")
    if row.kind != IncidentKind.UNOWNED_QUANTITY:
        raise AdoptionRefused(409, (
            f"incident #{incident_id} is {row.kind}: only unowned quantity can be adopted or "
            "flattened (dismiss it once you have dealt with it)"))
    if row.status != IncidentStatus.OPEN:
        raise AdoptionRefused(409, f"incident #{incident_id} is {row.status}, not open")
    done = attempts(row)
    if done:
        last = done[-1]
        trade = await session.get(Trade, int(last["trade_id"]))
        if trade is not None and not TradeStatus(trade.status).is_final:
            raise AdoptionRefused(409, (
                f"incident #{incident_id} is being answered by trade #{trade.id} "
                f"({trade.workflow_id}, {trade.status}); close or cancel that trade instead"))
    strategy_row = None
    if strategy is not None:
        strategy_row = await session.scalar(select(Strategy).where(Strategy.name == strategy))
        if strategy_row is None:
            raise AdoptionRefused(404, f"no strategy {strategy!r}")
    if await session.get(TradingPair, row.symbol) is None:
        raise AdoptionRefused(409, f"{row.symbol} is not in the pair list: sync pairs first")
    assert row.side is not None  # a quantity incident always names its side
    side = PositionSide(row.side)
    number = len(done) + 1
    workflow_id = workflow_id_for(row.id, number, await queries.install_id(session))
    gap = row.exchange_qty - row.owned_qty
    trade = Trade(
        workflow_id=workflow_id, signal_id=None,
        strategy_id=strategy_row.id if strategy_row is not None else None,
        symbol=row.symbol, side=side.value, intent=_intent(side).value,
        entry_type=EntryType.MARKET.value, status=TradeStatus.PENDING.value, target_qty=gap,
    )
    session.add(trade)
    await session.flush()
    verb = "flattens" if close else f"protects it with a stop {show(stop_pct)} % from the mark"
    now = datetime.now(UTC)
    action = {
        "at": now.isoformat(), "by": by,
        "action": (IncidentAction.FLATTEN if close else IncidentAction.ADOPT).value,
        "note": (f"trade #{trade.id} ({workflow_id}) adopts up to {show(gap)} "
                 f"{row.symbol} {side.value} and {verb}" + (f": {note}" if note else "")),
        "trade_id": trade.id, "workflow_id": workflow_id, "attempt": number,
        "stop_pct": str(stop_pct), "strategy": strategy,
    }
    row.actions = [*row.actions, action]
    return _attempt(row, action)


def _intent(side: PositionSide) -> Intent:
    return Intent.OPEN_LONG if side is PositionSide.LONG else Intent.OPEN_SHORT


async def start(state: AppState, attempt: Attempt) -> None:
    """Start (or start again: the same workflow id never runs twice) the attempt's workflow.
    Raises TemporalUnavailable when Temporal does not take it; the responder tries again."""
    async with state.sessionmaker() as session:
        incident = await session.get(Incident, attempt.incident_id)
        trade = await session.get(Trade, attempt.trade_id)
        namespace = await queries.install_id(session)
        snapshot = StrategySnapshot(name=NO_STRATEGY)
        if trade is not None and trade.strategy_id is not None:
            row = await session.get(Strategy, trade.strategy_id)
            if row is not None:
                snapshot = StrategySnapshot.model_validate(row, from_attributes=True)
    assert incident is not None and trade is not None and incident.side is not None
    inp = TradeInput(
        trade_id=trade.id, strategy=snapshot, symbol=trade.symbol, intent=Intent(trade.intent),
        received_at=trade.created_at, client_id_namespace=namespace,
        adopt=Adoption(incident_id=incident.id, qty=trade.target_qty or Decimal(0),
                       stop_pct=attempt.stop_pct, close=attempt.close, by=attempt.by),
    )
    client = await state.temporal.try_connect()
    await start_trade(client, state.settings, attempt.workflow_id, inp, eager=False)
    log.warning("incident #%d: trade #%d (%s) %s it", incident.id, trade.id, attempt.workflow_id,
                "flattens" if attempt.close else "adopts")


async def adopt(
    state: AppState, incident_id: int, *, by: str, close: bool, stop_pct: Decimal | None = None,
    strategy: str | None = None, note: str | None = None,
) -> Attempt:
    """Adopt (or flatten) an open unowned-quantity incident now: the operator's way in."""
    async with state.sessionmaker() as session, session.begin():
        attempt = await begin(session, incident_id, by=by, close=close,
                              stop_pct=stop_pct or state.settings.adopt_stop_pct,
                              strategy=strategy, note=note)
    await start(state, attempt)
    return attempt


def last_attempt(row: Incident) -> Attempt | None:
    done = attempts(row)
    return _attempt(row, done[-1]) if done else None
