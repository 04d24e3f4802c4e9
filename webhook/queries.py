"""The SQL of alert intake: strategies, symbols, signals and trades, inside the caller's
transaction. Every statement here runs on the ack path, so each is one indexed round trip."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from weakref import WeakKeyDictionary

from sqlalchemy import Engine, Select, bindparam, func, literal, select, text, true, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from activities import notify
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
# Outcomes that hold a dedupe key: an accepted alert, or one accepted but not yet started
# (answered 503, or answered 202 with its start queued).
HOLDS_KEY = (SignalOutcome.ACCEPTED.value, SignalOutcome.NOT_STARTED.value,
             SignalOutcome.QUEUED.value)
# Accepted and started, or being started by its own process: a redelivery is a duplicate.
ANSWERED_ACCEPTED = (SignalOutcome.ACCEPTED.value, SignalOutcome.QUEUED.value)
# Accepted but not started by a request: the outbox starts them from their record.
WAITING_START = (SignalOutcome.NOT_STARTED.value, SignalOutcome.QUEUED.value)
EXIT_RECORDED = (SignalOutcome.ACCEPTED.value, SignalOutcome.NOTHING_TO_CLOSE.value)
# An exit an unstarted open must not outlive: one recorded, or one answered NOT_STARTED (it
# found that open not started yet and TradingView will not redeliver it), so the outbox ends
# that open rather than start it into a position the strategy has left.
EXIT_SEEN = (*EXIT_RECORDED, SignalOutcome.NOT_STARTED.value)


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
class OpenTradeRow:
    """An open trade as routing reads it: an exit closes it, a reverse closes it first."""

    id: int
    workflow_id: str
    status: str
    alert_time: datetime | None
    open_qty: Decimal | None = None  # as its row last recorded it (a partial exit's share)


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


# Per engine (one database): the install id is written once by migration 0004 and never
# changed, so one read per process is enough.
_INSTALL_IDS: WeakKeyDictionary[Engine, str] = WeakKeyDictionary()


async def install_id(session: AsyncSession) -> str:
    """This database's install id (migration 0004): the namespace of every client order id."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    cached = _INSTALL_IDS.get(engine)
    if cached is None:
        cached = _INSTALL_IDS[engine] = (await session.execute(select(Install.id))).scalar_one()
    return cached


# The hot statements are built once (bind parameters, no per-call construction) and psycopg
# prepares them on the server after a few uses.
# Driven by a one-row SELECT so that a missing strategy reads (and builds) the same pair rows
# as an existing one: the secret check must not take longer for a name that exists.
_ONE_ROW = select(literal(1).label("one")).subquery("one_row")
_STRATEGY_AND_PAIRS = (
    select(Strategy, TradingPair)
    .select_from(_ONE_ROW)
    .outerjoin(Strategy, Strategy.name == bindparam("name"))
    .outerjoin(
        TradingPair,
        func.upper(TradingPair.symbol).in_(bindparam("candidates", expanding=True)),
    )
)


async def find_strategy_and_pair(
    session: AsyncSession, name: str, candidates: tuple[str, ...]
) -> tuple[Strategy | None, TradingPair | None]:
    """The strategy named `name` and the first candidate symbol in the synced pair list, in
    one round trip (never cached: a disabled strategy or a rotated secret counts at once)."""
    rows = (
        await session.execute(_STRATEGY_AND_PAIRS, {"name": name, "candidates": list(candidates)})
    ).all()
    by_upper = {pair.symbol.upper(): pair for _, pair in rows if pair is not None}
    pair = next((by_upper[c] for c in candidates if c in by_upper), None)
    strategy = rows[0][0] if rows else None
    return (strategy, pair) if strategy is not None else (None, None)


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


_LOCK = text("SELECT pg_advisory_xact_lock(CAST(:sid AS integer), hashtext(:symbol))")


async def lock_strategy_symbol(session: AsyncSession, strategy_id: int, symbol: str) -> None:
    """Serialise the alerts of one strategy and symbol until commit: dedupe, the stale-open
    rule and open/close routing then see each other's rows. Every delivery of one alert has
    the same strategy and symbol, so this also is the lock on its body hash."""
    await session.execute(_LOCK, {"sid": strategy_id % 2_147_483_647, "symbol": symbol})


def _holder_select() -> Select[Any]:
    """A signal and its trade, as a KeyHolder reads them."""
    return select(
        Signal.id.label("signal_id"),
        Signal.outcome,
        Signal.workflow_id,
        Signal.intent,
        Signal.symbol,
        Signal.body,
        Signal.received_at,
        Trade.id.label("trade_id"),
        Trade.status.label("trade_status"),
    )


def _holder_query(windowed: bool) -> Select[Any]:
    """The signal that holds a key: the accepted one (the unique index allows one), or one
    accepted but not started. Windowed keys carry a suffix and count within the window only
    (parameters `pattern` and `since`; else `key`)."""
    if windowed:
        match = Signal.dedupe_key.like(bindparam("pattern")) & (
            Signal.received_at >= bindparam("since")
        )
    else:
        match = Signal.dedupe_key == bindparam("key")
    return (
        _holder_select()
        .outerjoin(Trade, Trade.signal_id == Signal.id)
        .where(Signal.strategy_id == bindparam("strategy_id"), match)
        .where(Signal.outcome.in_(HOLDS_KEY))
        .order_by(Signal.outcome.asc(), Signal.id.desc())  # ACCEPTED first
        .limit(1)
    )


def _holder_params(
    strategy_id: int, key: str, windowed: bool, window_s: int, now: datetime
) -> dict[str, Any]:
    if windowed:
        return {
            "strategy_id": strategy_id,
            "pattern": key + ":%",
            "since": now - timedelta(seconds=window_s),
        }
    return {"strategy_id": strategy_id, "key": key}


_HOLDER = {windowed: _holder_query(windowed) for windowed in (False, True)}
# The newest `time` of an exit or reverse alert recorded for this strategy and symbol.
_LATEST_EXIT = (
    select(
        func.max(Signal.alert_time).label("last_exit"),
        # The newest exit that found nothing to close: an open of that very second was the
        # exit's own trade, delivered after it (docs/design.md#dedupe-ordering-and-workflow-ids).
        func.max(Signal.alert_time)
        .filter(Signal.outcome == SignalOutcome.NOTHING_TO_CLOSE.value)
        .label("last_empty_exit"),
    )
    .where(Signal.strategy_id == bindparam("strategy_id"), Signal.symbol == bindparam("symbol"))
    .where(Signal.intent.in_(EXIT_INTENTS), Signal.outcome.in_(EXIT_RECORDED))
    .subquery("latest")
)
_HOLDER_AND_LATEST_EXIT = {
    windowed: select(_LATEST_EXIT.c.last_exit, _LATEST_EXIT.c.last_empty_exit, holder).select_from(
        _LATEST_EXIT.outerjoin(holder, true())
    )
    for windowed, holder in ((w, _holder_query(w).lateral("holder")) for w in (False, True))
}


def _key_holder(row: Any) -> KeyHolder | None:
    if row is None or row.signal_id is None:
        return None
    return KeyHolder(
        signal_id=row.signal_id,
        outcome=row.outcome,
        workflow_id=row.workflow_id,
        intent=row.intent,
        symbol=row.symbol,
        body=row.body,
        received_at=row.received_at,
        trade_id=row.trade_id,
        trade_status=row.trade_status,
    )


async def key_holder(
    session: AsyncSession, strategy_id: int, key: str, windowed: bool, window_s: int, now: datetime
) -> KeyHolder | None:
    params = _holder_params(strategy_id, key, windowed, window_s, now)
    return _key_holder((await session.execute(_HOLDER[windowed], params)).first())


@dataclass(frozen=True)
class LatestExits:
    """The newest exit alert times of a strategy and symbol (the stale-open rules)."""

    any: datetime | None  # any exit recorded
    empty: datetime | None  # an exit that found nothing to close


async def key_holder_and_latest_exit(
    session: AsyncSession,
    strategy_id: int,
    symbol: str,
    key: str,
    windowed: bool,
    window_s: int,
    now: datetime,
) -> tuple[KeyHolder | None, LatestExits]:
    """`key_holder` and the newest exit time (the stale-open rule), in one round trip.
    Run it after `lock_strategy_symbol`, as its own statement: a statement reads the rows
    committed before it began, so a read in the locking statement could miss the rows of the
    transaction the lock waited for."""
    params = _holder_params(strategy_id, key, windowed, window_s, now) | {"symbol": symbol}
    row = (await session.execute(_HOLDER_AND_LATEST_EXIT[windowed], params)).one()
    return _key_holder(row), LatestExits(row.last_exit, row.last_empty_exit)


async def open_trades(
    session: AsyncSession, strategy_id: int, symbol: str, side: PositionSide
) -> list[OpenTradeRow]:
    """This strategy's open trades on `symbol` and `side`, oldest first, from PostgreSQL (never
    Temporal's visibility, which lags). A trade whose start Temporal never took is not open."""
    rows = await session.execute(
        select(Trade.id, Trade.workflow_id, Trade.status, Signal.alert_time,
               Trade.filled_qty - Trade.closed_qty)
        .outerjoin(Signal, Signal.id == Trade.signal_id)
        .where(
            Trade.strategy_id == strategy_id,
            Trade.symbol == symbol,
            Trade.side == side.value,
            Trade.status.in_(OPEN_STATUSES),
            # A queued open counts: its start is on its way (webhook/start_queue.py).
            func.coalesce(Signal.outcome, SignalOutcome.ACCEPTED.value).in_(ANSWERED_ACCEPTED),
        )
        .order_by(Trade.id)
    )
    return [OpenTradeRow(*row) for row in rows]


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
            index_where=text("outcome IN ('ACCEPTED', 'QUEUED')"),
        )
        .returning(Signal.id)
    )
    return (await session.execute(stmt)).scalar_one_or_none()


async def set_signal(session: AsyncSession, signal_id: int, **values: Any) -> None:
    await session.execute(update(Signal).where(Signal.id == signal_id).values(**values))


async def settle_queued(session: AsyncSession, signal_id: int, outcome: SignalOutcome,
                        reason: str | None) -> None:
    """A queued start's end: ACCEPTED once Temporal took it, NOT_STARTED (for the outbox) when
    it did not. Only while the row is still QUEUED: a redelivery or the outbox may have settled
    it meanwhile."""
    await session.execute(
        update(Signal)
        .where(Signal.id == signal_id, Signal.outcome == SignalOutcome.QUEUED.value)
        .values(outcome=outcome.value, reason=reason)
    )


# One round trip for an accepted open: the ACCEPTED signal (its id drawn first, so that it
# can carry its own workflow id), and its trade only when the signal was inserted. Casts: the
# values of an INSERT ... SELECT get no type from the target columns.
_CLAIM_OPEN = text(
    """
    WITH new AS (SELECT nextval(pg_get_serial_sequence('signal', 'id')) AS id),
    claimed AS (
        INSERT INTO signal (id, received_at, strategy_id, strategy_name, outcome, reason,
                            dedupe_key, symbol, intent, alert_time, source_ip, body, workflow_id)
        VALUES ((SELECT id FROM new), :received_at, :strategy_id, :strategy_name, :outcome,
                NULL, :dedupe_key, :symbol, :intent, :alert_time, :source_ip, :body,
                :workflow_prefix || (SELECT id FROM new))
        ON CONFLICT (strategy_id, dedupe_key) WHERE outcome IN ('ACCEPTED', 'QUEUED') DO NOTHING
        RETURNING id, workflow_id
    ),
    opened AS (
        INSERT INTO trade (workflow_id, signal_id, strategy_id, symbol, side, intent,
                           entry_type, status, leverage, tp_price, sl_price)
        SELECT workflow_id, id, CAST(:strategy_id AS bigint), CAST(:symbol AS text),
               CAST(:side AS text), CAST(:intent AS text), CAST(:entry_type AS text),
               CAST(:status AS text), CAST(:leverage AS integer), CAST(:tp_price AS numeric),
               CAST(:sl_price AS numeric)
        FROM claimed
        RETURNING id, signal_id, workflow_id
    )
    SELECT signal_id, id AS trade_id, workflow_id FROM opened
    """
).bindparams(bindparam("body", type_=JSONB))


@dataclass(frozen=True)
class Claimed:
    signal_id: int
    trade_id: int
    workflow_id: str


async def claim_open(
    session: AsyncSession,
    d: Delivery,
    workflow_prefix: str,
    *,
    side: str,
    entry_type: str,
    leverage: int | None,
    tp_price: Decimal | None,
    sl_price: Decimal | None,
    outcome: SignalOutcome = SignalOutcome.ACCEPTED,
) -> Claimed | None:
    """`claim_key`, then the trade and the signal's workflow id (`workflow_prefix` + signal
    id), in one statement; None when another accepted signal holds the key (nothing written).
    `outcome`: ACCEPTED, or QUEUED when the answer goes before the start (a burst)."""
    assert d.intent is not None and d.strategy_id is not None
    assert outcome in (SignalOutcome.ACCEPTED, SignalOutcome.QUEUED)
    values = _signal_values(d, outcome, None)
    del values["reason"]
    row = (
        await session.execute(
            _CLAIM_OPEN,
            values
            | {
                "workflow_prefix": workflow_prefix,
                "side": side,
                "entry_type": entry_type,
                "status": TradeStatus.PENDING.value,
                "leverage": leverage,
                "tp_price": tp_price,
                "sl_price": sl_price,
            },
        )
    ).first()
    return None if row is None else Claimed(row.signal_id, row.trade_id, row.workflow_id)


# --- the outbox: accepted alerts whose start Temporal did not take ----------------------------


@dataclass(frozen=True)
class Unstarted:
    signal_id: int
    strategy_id: int
    symbol: str


async def unstarted(session: AsyncSession, received_before: datetime, limit: int) -> list[Unstarted]:
    """Alerts answered NOT_STARTED, or QUEUED (answered 202 before their start), whose trade
    is still PENDING, oldest first."""
    rows = await session.execute(
        select(Signal.id, Signal.strategy_id, Signal.symbol)
        .join(Trade, Trade.signal_id == Signal.id)
        .where(
            Signal.outcome.in_(WAITING_START),
            Trade.status == TradeStatus.PENDING.value,
            Signal.received_at < received_before,
        )
        .order_by(Signal.id)
        .limit(limit)
    )
    return [Unstarted(*row) for row in rows]


async def unstarted_holder(session: AsyncSession, signal_id: int) -> KeyHolder | None:
    """The signal as `key_holder` would read it, while it is still not started (read again
    under the strategy and symbol's lock: a redelivery may have started it meanwhile)."""
    row = (await session.execute(
        _holder_select()
        .join(Trade, Trade.signal_id == Signal.id)
        .where(
            Signal.id == signal_id,
            Signal.outcome.in_(WAITING_START),
            Trade.status == TradeStatus.PENDING.value,
        )
    )).one_or_none()
    return _key_holder(row)


async def end_unstarted(session: AsyncSession, holder: KeyHolder, why: str) -> None:
    """The trade never started and never will: REFUSED, with why (the signal keeps NOT_STARTED)."""
    assert holder.trade_id is not None
    ended = await session.execute(
        update(Trade)
        .where(Trade.id == holder.trade_id, Trade.status == TradeStatus.PENDING.value)
        # Ended now: the day's summary counts a trade by when it ended.
        .values(status=TradeStatus.REFUSED.value, error=why, closed_at=func.now())
        .returning(Trade.id)
    )
    if ended.first() is not None:
        await notify.trade_ended(session, holder.trade_id, TradeStatus.REFUSED, why)
    await set_signal(session, holder.signal_id, reason=why)


@dataclass(frozen=True)
class Stranded:
    signal_id: int
    trade_id: int
    workflow_id: str
    strategy_id: int
    symbol: str


async def stranded(session: AsyncSession, now: datetime, margin_s: int, limit: int,
                   *, after: int = 0) -> list[Stranded]:
    """Alerts recorded ACCEPTED whose trade is still PENDING although they are older than their
    strategy's max alert age plus `margin_s`: no request can still be starting one (a start is
    given a few seconds), so one whose workflow Temporal does not have was never started (the
    process that recorded it died before its start reached Temporal)."""
    too_old = Signal.received_at < (
        now - func.make_interval(0, 0, 0, 0, 0, 0, Strategy.max_alert_age_s + margin_s))
    rows = await session.execute(
        select(Signal.id, Trade.id, Trade.workflow_id, Signal.strategy_id, Signal.symbol)
        .join(Trade, Trade.signal_id == Signal.id)
        .join(Strategy, Strategy.id == Signal.strategy_id)
        .where(
            Signal.outcome == SignalOutcome.ACCEPTED.value,
            Trade.status == TradeStatus.PENDING.value,
            too_old,
            Signal.id > after,
        )
        .order_by(Signal.id)
        .limit(limit)
    )
    return [Stranded(*row) for row in rows]


async def end_stranded(session: AsyncSession, item: Stranded, why: str) -> bool:
    """End a stranded alert's trade REFUSED and its signal NOT_STARTED, with why; False when it
    is no longer stranded (its trade moved on meanwhile)."""
    ended = await session.execute(
        update(Trade)
        .where(Trade.id == item.trade_id, Trade.status == TradeStatus.PENDING.value)
        # Ended now: the day's summary counts a trade by when it ended.
        .values(status=TradeStatus.REFUSED.value, error=why, closed_at=func.now())
        .returning(Trade.id)
    )
    if ended.first() is None:
        return False
    await notify.trade_ended(session, item.trade_id, TradeStatus.REFUSED, why)
    await set_signal(session, item.signal_id, outcome=SignalOutcome.NOT_STARTED.value, reason=why)
    return True


# The intents that close a side: its exit, and the reverse away from it.
CLOSES_SIDE = {
    PositionSide.LONG: (Intent.CLOSE_LONG.value, Intent.REVERSE_TO_SHORT.value),
    PositionSide.SHORT: (Intent.CLOSE_SHORT.value, Intent.REVERSE_TO_LONG.value),
}


async def exit_since(
    session: AsyncSession, strategy_id: int, symbol: str, side: PositionSide,
    received_at: datetime, alert_time: datetime | None,
) -> bool:
    """Whether an exit of this strategy, symbol and side was recorded after an open received at
    `received_at` (and is not older than its `alert_time`): the open's own exit, which found
    nothing to close because the open never started, or was answered NOT_STARTED because it
    had not started yet (EXIT_SEEN)."""
    newer = Signal.received_at > received_at
    if alert_time is not None:
        newer &= Signal.alert_time.is_(None) | (Signal.alert_time >= alert_time)
    found = await session.scalar(
        select(Signal.id)
        .where(Signal.strategy_id == strategy_id, Signal.symbol == symbol, newer)
        .where(Signal.intent.in_(CLOSES_SIDE[side]), Signal.outcome.in_(EXIT_SEEN))
        .limit(1)
    )
    return found is not None
