"""Notifications (docs/design.md#notifications), what to tell: the events' outbox rows.

An event (a trade opened or ended, an incident raised or resolved, a risk state changed, the
day's summary) is written as `notification` rows in the transaction that records the event
itself, one row per kind of receiver, so nothing reported is lost and nothing on the trading
path waits for a receiver. The worker delivers them (activities/notify_sender.py). No row holds
a receiver's secret.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Notification, Strategy, Trade
from trading.risk import ACCOUNT, scope_label
from trading.types import NotifyEvent, NotifyReceiver, TradeStatus

# --- events ----------------------------------------------------------------------------------


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


async def enqueue(session: AsyncSession, event: NotifyEvent, payload: Mapping[str, Any], *,
                  strategy_id: int | None = None, dedupe_key: str | None = None) -> None:
    """Add the event's rows (one per kind of receiver) to the outbox, in the caller's
    transaction: they commit with the event they report, or not at all. `payload` holds what
    the message says and never a secret."""
    body = {k: _plain(v) for k, v in payload.items()}
    body["at"] = body.get("at") or datetime.now(UTC).isoformat()
    rows = [{"event": event.value, "strategy_id": strategy_id, "receiver": kind.value,
             "payload": body,
             "dedupe_key": f"{dedupe_key}:{kind.value}" if dedupe_key else None}
            for kind in NotifyReceiver]
    stmt = insert(Notification).values(rows)
    if dedupe_key:
        stmt = stmt.on_conflict_do_nothing(index_elements=[Notification.dedupe_key],
                                           index_where=Notification.dedupe_key.is_not(None))
    await session.execute(stmt)


_FINAL_EVENTS = {
    TradeStatus.CLOSED: NotifyEvent.TRADE_CLOSED,
    TradeStatus.REFUSED: NotifyEvent.TRADE_REFUSED,
    TradeStatus.FAILED: NotifyEvent.TRADE_FAILED,
    TradeStatus.CANCELLED: NotifyEvent.TRADE_CANCELLED,
}


@dataclass(frozen=True)
class TradeBefore:
    """What a trade's row said before a write: enough to tell which events the write makes."""

    status: TradeStatus
    opened: bool  # something had filled (opened_at set)
    strategy_id: int | None
    strategy: str | None
    workflow_id: str
    symbol: str
    side: str


def trade_events(before: TradeBefore, *, status: TradeStatus, values: Mapping[str, Any],
                 trade_id: int) -> list[tuple[NotifyEvent, dict[str, Any]]]:
    """The events a write of the trade's row makes: opened (its first fill), then ended (its
    first final status), each with what the message needs."""
    common = {"trade_id": trade_id, "workflow_id": before.workflow_id,
              "strategy": before.strategy, "symbol": before.symbol, "side": before.side}
    out: list[tuple[NotifyEvent, dict[str, Any]]] = []
    if not before.opened and (values.get("filled_qty") or 0) > 0:
        out.append((NotifyEvent.TRADE_OPENED, common | {
            k: values.get(k) for k in ("filled_qty", "avg_entry_price", "leverage", "tp_price",
                                       "sl_price")}))
    if status.is_final and not before.status.is_final:
        out.append((_FINAL_EVENTS[status], common | {
            "status": status.value,
            "reason": values.get("error") or values.get("warning"),
            **{k: values.get(k) for k in ("filled_qty", "avg_entry_price", "closed_qty",
                                          "avg_exit_price", "realized_pnl", "fees")},
        }))
    return out


async def trade_before(session: AsyncSession, trade_id: int, workflow_id: str
                       ) -> TradeBefore | None:
    """The trade's row (locked until the transaction ends), read before writing it."""
    row = (await session.execute(
        select(Trade.status, Trade.opened_at, Trade.strategy_id, Strategy.name,
               Trade.workflow_id, Trade.symbol, Trade.side)
        .outerjoin(Strategy, Strategy.id == Trade.strategy_id)
        .where(Trade.id == trade_id, Trade.workflow_id == workflow_id)
        .with_for_update(of=Trade)
    )).first()
    if row is None:
        return None
    return TradeBefore(status=TradeStatus(row.status), opened=row.opened_at is not None,
                       strategy_id=row.strategy_id, strategy=row.name,
                       workflow_id=row.workflow_id, symbol=row.symbol, side=row.side)


async def trade_ended(session: AsyncSession, trade_id: int, status: TradeStatus,
                      reason: str) -> None:
    """The event of a trade the webhook ended without its workflow (never started, or an
    adoption attempt whose workflow closed first), in the transaction that ended it."""
    row = (await session.execute(
        select(Trade.workflow_id, Trade.symbol, Trade.side, Trade.strategy_id, Strategy.name)
        .outerjoin(Strategy, Strategy.id == Trade.strategy_id).where(Trade.id == trade_id)
    )).first()
    if row is None:
        return
    await enqueue(session, _FINAL_EVENTS[status], {
        "trade_id": trade_id, "workflow_id": row.workflow_id, "strategy": row.name,
        "symbol": row.symbol, "side": row.side, "status": status.value, "reason": reason,
    }, strategy_id=row.strategy_id)


async def strategy_id_of_scope(session: AsyncSession, scope: str) -> int | None:
    if scope == ACCOUNT:
        return None
    return await session.scalar(select(Strategy.id).where(
        Strategy.name == scope.removeprefix("strategy:")))


async def incident_events(session: AsyncSession, raised: Iterable[Any],
                          cleared: Iterable[Any]) -> None:
    """Rows for the incidents a round raised and cleared (the account's receivers)."""
    for row, event in [*((r, NotifyEvent.INCIDENT_RAISED) for r in raised),
                       *((r, NotifyEvent.INCIDENT_RESOLVED) for r in cleared)]:
        await enqueue(session, event, {
            "incident_id": row.id, "kind": row.kind, "symbol": row.symbol, "side": row.side,
            "detail": row.detail, "status": row.status, "resolution": row.resolution,
        })



def risk_payload(*, scope: str, before: Any, after: Any, actor: str, reason: str
                 ) -> dict[str, Any]:
    return {"scope": scope, "scope_label": scope_label(scope),
            "state_before": before.state.value, "state_after": after.state.value,
            "flatten": after.flatten, "latched": after.latched, "actor": actor, "reason": reason}
