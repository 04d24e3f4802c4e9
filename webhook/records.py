"""The SQL of alert intake: strategies, symbols, signals and trades, inside the caller's
transaction. Every statement here runs on the ack path, so each is one indexed round trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Install, Signal, Strategy, Trade, TradingPair
from trading.types import Intent, PairStatus, PositionSide, SignalOutcome, TradeStatus

# Plain strings: the driver would render an enum member by its name, not its value.
OPEN_STATUSES = tuple(
    s.value for s in (TradeStatus.PENDING, TradeStatus.ENTERING, TradeStatus.TRACKING)
)
EXIT_INTENTS = tuple(
    i.value
    for i in (
        Intent.CLOSE_LONG,
        Intent.CLOSE_SHORT,
        Intent.REVERSE_TO_LONG,
        Intent.REVERSE_TO_SHORT,
    )
)
# Outcomes that hold a dedupe key: an accepted alert, or one accepted but not yet started.
HOLDS_KEY = (SignalOutcome.ACCEPTED.value, SignalOutcome.NOT_STARTED.value)
EXIT_RECORDED = (SignalOutcome.ACCEPTED.value, SignalOutcome.NOTHING_TO_CLOSE.value)


@dataclass
class Delivery:
    """What is known about one delivery so far; becomes its `signal` row whatever happens."""

    received_at: datetime
    source_ip: str | None
    strategy_id: int | None = None
    strategy_name: str | None = None
    body: dict[str, Any] | None = None
    dedupe_key: str | None = None
    symbol: str | None = None
    intent: Intent | None = None
    alert_time: datetime | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class OpenTrade:
    id: int
    workflow_id: str
    status: str
    alert_time: datetime | None


@dataclass(frozen=True)
class KeyHolder:
    """An earlier signal holding this alert's dedupe key, and its trade if it opened one."""

    signal_id: int
    outcome: str
    workflow_id: str | None
    intent: str | None
    symbol: str | None
    body: dict[str, Any] | None
    received_at: datetime
    trade_id: int | None
    trade_status: str | None


async def install_id(session: AsyncSession) -> str:
    """This database's install id (migration 0004): the namespace of every client order id."""
    return (await session.execute(select(Install.id))).scalar_one()


async def find_strategy(session: AsyncSession, name: str) -> Strategy | None:
    return (
        await session.execute(select(Strategy).where(Strategy.name == name))
    ).scalar_one_or_none()


async def find_pair(session: AsyncSession, candidates: tuple[str, ...]) -> TradingPair | None:
    """The first candidate symbol in the synced pair list (exact spelling first)."""
    rows = (
        (
            await session.execute(
                select(TradingPair).where(func.upper(TradingPair.symbol).in_(candidates))
            )
        )
        .scalars()
        .all()
    )
    by_upper = {row.symbol.upper(): row for row in rows}
    return next((by_upper[c] for c in candidates if c in by_upper), None)


async def all_symbols(session: AsyncSession) -> list[str]:
    return list((await session.execute(select(TradingPair.symbol))).scalars().all())


def tradable(pair: TradingPair) -> bool:
    return pair.status == PairStatus.OPEN and pair.api_supported


async def lock_strategy_symbol(session: AsyncSession, strategy_id: int, symbol: str) -> None:
    """Serialise the alerts of one strategy and symbol until commit: dedupe, the stale-open
    rule and open/close routing then see each other's rows. Every delivery of one alert has
    the same strategy and symbol, so this also is the lock on its body hash."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(CAST(:sid AS integer), hashtext(:symbol))"),
        {"sid": strategy_id % 2_147_483_647, "symbol": symbol},
    )


async def key_holder(
    session: AsyncSession, strategy_id: int, key: str, windowed: bool, window_s: int, now: datetime
) -> KeyHolder | None:
    """The signal that holds `key`: the accepted one (the unique index allows one), or one
    accepted but not started. Windowed keys carry a suffix and count within the window only."""
    if windowed:
        match = Signal.dedupe_key.like(key + ":%")
        match = match & (Signal.received_at >= now - timedelta(seconds=window_s))
    else:
        match = Signal.dedupe_key == key
    row = (
        await session.execute(
            select(Signal, Trade.id, Trade.status)
            .outerjoin(Trade, Trade.signal_id == Signal.id)
            .where(Signal.strategy_id == strategy_id, match, Signal.outcome.in_(HOLDS_KEY))
            .order_by(Signal.outcome.asc(), Signal.id.desc())  # ACCEPTED first
            .limit(1)
        )
    ).first()
    if row is None:
        return None
    signal, trade_id, trade_status = row
    return KeyHolder(
        signal_id=signal.id,
        outcome=signal.outcome,
        workflow_id=signal.workflow_id,
        intent=signal.intent,
        symbol=signal.symbol,
        body=signal.body,
        received_at=signal.received_at,
        trade_id=trade_id,
        trade_status=trade_status,
    )


async def latest_exit_time(session: AsyncSession, strategy_id: int, symbol: str) -> datetime | None:
    """The newest `time` of an exit or reverse alert recorded for this strategy and symbol."""
    return (
        await session.execute(
            select(func.max(Signal.alert_time)).where(
                Signal.strategy_id == strategy_id,
                Signal.symbol == symbol,
                Signal.intent.in_(EXIT_INTENTS),
                Signal.outcome.in_(EXIT_RECORDED),
            )
        )
    ).scalar_one_or_none()


async def open_trades(
    session: AsyncSession, strategy_id: int, symbol: str, side: PositionSide
) -> list[OpenTrade]:
    """This strategy's open trades on `symbol` and `side`, oldest first, from PostgreSQL (never
    Temporal's visibility, which lags). A trade whose start Temporal never took is not open."""
    rows = await session.execute(
        select(Trade.id, Trade.workflow_id, Trade.status, Signal.alert_time)
        .outerjoin(Signal, Signal.id == Trade.signal_id)
        .where(
            Trade.strategy_id == strategy_id,
            Trade.symbol == symbol,
            Trade.side == side.value,
            Trade.status.in_(OPEN_STATUSES),
            func.coalesce(Signal.outcome, SignalOutcome.ACCEPTED.value) == SignalOutcome.ACCEPTED,
        )
        .order_by(Trade.id)
    )
    return [OpenTrade(*row) for row in rows]


def _signal_values(d: Delivery, outcome: SignalOutcome, reason: str | None) -> dict[str, Any]:
    return {
        "received_at": d.received_at,
        "strategy_id": d.strategy_id,
        "strategy_name": d.strategy_name,
        "outcome": outcome.value,
        "reason": reason,
        "dedupe_key": d.dedupe_key,
        "symbol": d.symbol,
        "intent": d.intent.value if d.intent else None,
        "alert_time": d.alert_time,
        "source_ip": d.source_ip,
        "body": d.body,
    }


async def insert_signal(
    session: AsyncSession,
    d: Delivery,
    outcome: SignalOutcome,
    reason: str | None = None,
    workflow_id: str | None = None,
) -> int:
    values = _signal_values(d, outcome, reason) | {"workflow_id": workflow_id}
    return (
        await session.execute(pg_insert(Signal).values(values).returning(Signal.id))
    ).scalar_one()


async def claim_key(session: AsyncSession, d: Delivery, reason: str | None = None) -> int | None:
    """Insert the ACCEPTED signal; None when the partial unique index says another accepted
    signal already holds the key (the database, not this process, decides)."""
    stmt = (
        pg_insert(Signal)
        .values(_signal_values(d, SignalOutcome.ACCEPTED, reason))
        .on_conflict_do_nothing(
            index_elements=["strategy_id", "dedupe_key"],
            index_where=text("outcome = 'ACCEPTED'"),
        )
        .returning(Signal.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_signal(session: AsyncSession, signal_id: int, **values: Any) -> None:
    await session.execute(update(Signal).where(Signal.id == signal_id).values(**values))


async def insert_trade(session: AsyncSession, **values: Any) -> int:
    values.setdefault("status", TradeStatus.PENDING.value)
    return (await session.execute(pg_insert(Trade).values(values).returning(Trade.id))).scalar_one()
