"""What the dashboard reads: queries on the rows PostgreSQL already has (db/models.py). Nothing
here writes; the actions go through the webhook's handlers (ui/actions.py)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import Fill, Incident, Order, Signal, Strategy, Trade
from db.models import Position as PositionRow
from trading.types import HOLDING_STATUSES, OPEN_TRADE_STATUSES, Leg, Side, TradeStatus
from ui.quality import FillAt, Outcome, TradeQuality, strategy_stats, summarize, trade_quality

PAGE = 100
QUALITY_WINDOW = 500  # the newest trades a strategy's execution quality is computed over


def alert_price(body: dict[str, Any] | None) -> Decimal | None:
    """The price the alert named (`price`, TradingView's {{close}} in the templates)."""
    raw = (body or {}).get("price")
    if raw is None:
        return None
    try:
        price = Decimal(str(raw))
    except InvalidOperation:
        return None
    return price if price.is_finite() and price > 0 else None


def net(trade: Trade) -> Decimal:
    return trade.realized_pnl - trade.fees


# --- positions ---------------------------------------------------------------------------------


@dataclass
class Position:
    """What the open trades own on one symbol and side, and which trades own it."""

    symbol: str
    side: str
    qty: Decimal = Decimal(0)
    trades: list[tuple[Trade, str | None]] = field(default_factory=list)
    # The exchange's position as the trades' tracking last read it (unrealized PnL at mark).
    exchange: PositionRow | None = None

    @property
    def avg_entry(self) -> Decimal | None:
        priced = [(t.filled_qty - t.closed_qty, t.avg_entry_price) for t, _ in self.trades
                  if t.avg_entry_price is not None and t.filled_qty > t.closed_qty]
        qty = sum((q for q, _ in priced), Decimal(0))
        return sum((q * p for q, p in priced), Decimal(0)) / qty if qty > 0 else None


async def open_positions(session: AsyncSession) -> list[Position]:
    rows = (await session.execute(
        select(Trade, Strategy.name).outerjoin(Strategy, Strategy.id == Trade.strategy_id)
        .where(Trade.status.in_(OPEN_TRADE_STATUSES)).order_by(Trade.symbol, Trade.side, Trade.id)
    )).all()
    book: dict[tuple[str, str], Position] = {}
    for trade, name in rows:
        pos = book.setdefault((trade.symbol, trade.side), Position(trade.symbol, trade.side))
        pos.trades.append((trade, name))
        if trade.status in HOLDING_STATUSES:
            pos.qty += trade.filled_qty - trade.closed_qty
    if book:
        rows = (await session.scalars(
            select(PositionRow).where(PositionRow.open.is_(True), PositionRow.qty > 0)
            .order_by(PositionRow.updated_at))).all()
        for row in rows:  # the newest read of each symbol and side wins
            if (row.symbol, row.side) in book:
                book[(row.symbol, row.side)].exchange = row
    return list(book.values())


# --- trades ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TradeFilter:
    strategy: str | None = None
    symbol: str | None = None
    status: TradeStatus | None = None
    since: date | None = None  # created on or after this day (UTC)
    until: date | None = None  # created on or before this day (UTC)
    before: int | None = None  # ids below this one: the next (older) page


async def trades(session: AsyncSession, f: TradeFilter,
                 limit: int = PAGE) -> list[tuple[Trade, str | None]]:
    stmt = select(Trade, Strategy.name).outerjoin(Strategy, Strategy.id == Trade.strategy_id)
    if f.strategy:
        stmt = stmt.where(Strategy.name == f.strategy)
    if f.symbol:
        stmt = stmt.where(Trade.symbol == f.symbol.upper())
    if f.status is not None:
        stmt = stmt.where(Trade.status == f.status.value)
    if f.since is not None:
        stmt = stmt.where(Trade.created_at >= datetime.combine(f.since, time(), tzinfo=UTC))
    if f.until is not None:
        stmt = stmt.where(Trade.created_at < datetime.combine(f.until + timedelta(days=1), time(),
                                                              tzinfo=UTC))
    if f.before is not None:
        stmt = stmt.where(Trade.id < f.before)
    return [(t, n) for t, n in (await session.execute(
        stmt.order_by(Trade.id.desc()).limit(limit))).all()]


async def strategy_names(session: AsyncSession) -> list[str]:
    return list((await session.scalars(select(Strategy.name).order_by(Strategy.name))).all())


async def symbols_traded(session: AsyncSession) -> list[str]:
    return list((await session.scalars(
        select(Trade.symbol).distinct().order_by(Trade.symbol))).all())


@dataclass(frozen=True)
class Event:
    """One line of a trade's timeline."""

    at: datetime
    kind: str  # alert, trade, order, fill, cancel, exit, note
    text: str
    detail: str = ""


@dataclass
class TradeDetail:
    trade: Trade
    strategy: str | None
    signals: list[Signal]
    orders: list[Order]
    fills: list[tuple[Fill, Order]]
    quality: TradeQuality
    timeline: list[Event]


async def trade_detail(session: AsyncSession, trade_id: int) -> TradeDetail | None:
    row = (await session.execute(
        select(Trade, Strategy.name).outerjoin(Strategy, Strategy.id == Trade.strategy_id)
        .where(Trade.id == trade_id))).first()
    if row is None:
        return None
    trade, name = row
    signal_match = Signal.workflow_id == trade.workflow_id
    if trade.signal_id is not None:
        signal_match = signal_match | (Signal.id == trade.signal_id)
    signals = list((await session.scalars(select(Signal).where(signal_match)
                                          .order_by(Signal.id))).all())
    orders = list((await session.scalars(
        select(Order).where(Order.trade_id == trade_id).order_by(Order.id))).all())
    fills = [(f, o) for f, o in (await session.execute(
        select(Fill, Order).join(Order, Order.id == Fill.order_id)
        .where(Order.trade_id == trade_id).order_by(Fill.filled_at, Fill.id))).all()]
    opening = next((s for s in signals if s.id == trade.signal_id), None)
    quality = _quality(trade, opening, orders, fills)
    return TradeDetail(trade, name, signals, orders, fills, quality,
                       timeline(trade, signals, orders, fills))


def _quality(trade: Trade, opening: Signal | None, orders: list[Order],
             fills: list[tuple[Fill, Order]]) -> TradeQuality:
    entries = [o for o in orders if o.leg == Leg.ENTRY.value]
    return trade_quality(
        trade.id,
        received_at=opening.received_at if opening is not None else None,
        alert_price=alert_price(opening.body) if opening is not None else None,
        first_order_at=min((o.created_at for o in entries), default=None),
        fills=[FillAt(Side(o.side), f.qty, f.price, f.fee, f.filled_at)
               for f, o in fills if o.leg == Leg.ENTRY.value],
    )


def _money(value: Decimal | None) -> str:
    return "—" if value is None else format(value.normalize(), "f")


def timeline(trade: Trade, signals: list[Signal], orders: list[Order],
             fills: list[tuple[Fill, Order]]) -> list[Event]:
    """From the alert to every order, fill, TP/SL move and exit, oldest first. An order row
    appears when it was sent; a cancelled or refused one again when it ended (its
    `updated_at`): moving a TP/SL is a cancel and a new protection order."""
    events: list[Event] = []
    for s in signals:
        price = alert_price(s.body)
        events.append(Event(s.received_at, "alert", f"alert #{s.id} {s.intent or ''} "
                            f"{s.symbol or ''} → {s.outcome}".strip(),
                            (f"price {_money(price)}" if price else "")
                            + (f" · {s.reason}" if s.reason else "")))
    events.append(Event(trade.created_at, "trade", f"trade #{trade.id} recorded "
                        f"({trade.intent}, {trade.entry_type})"))
    for o in orders:
        what = "TP/SL" if o.leg == Leg.PROTECTION.value else o.leg.replace("_", " ")
        price = f" @ {_money(o.price)}" if o.price is not None else ""
        events.append(Event(o.created_at, "order",
                            f"{what} order {o.side} {o.order_type} {_money(o.qty)}{price}",
                            f"{o.client_order_id}" + (" · reduce-only" if o.reduce_only else "")))
        if o.status in ("CANCELED", "REJECTED", "EXPIRED", "FAILED") or o.error:
            events.append(Event(o.updated_at, "cancel", f"{what} order {o.status.lower()}",
                                o.error or o.client_order_id))
    for f, o in fills:
        events.append(Event(f.filled_at, "fill",
                            f"fill {o.side} {_money(f.qty)} @ {_money(f.price)} ({o.leg})",
                            f"fee {_money(f.fee)} · realized {_money(f.realized_pnl)}"))
    if trade.opened_at is not None:
        events.append(Event(trade.opened_at, "trade", "position opened",
                            f"avg entry {_money(trade.avg_entry_price)}"))
    if trade.closed_at is not None:
        events.append(Event(trade.closed_at, "exit", f"trade {trade.status.lower()}",
                            f"avg exit {_money(trade.avg_exit_price)} · net PnL "
                            f"{_money(net(trade))}" + (f" · {trade.error}" if trade.error else "")))
    return sorted(events, key=lambda e: e.at)


# --- strategies and execution quality ----------------------------------------------------------


async def qualities(session: AsyncSession, trade_ids: list[int]) -> dict[int, TradeQuality]:
    """Each trade's entry against its alert, in three queries whatever the count."""
    if not trade_ids:
        return {}
    rows = (await session.execute(
        select(Trade.id, Signal.received_at, Signal.body)
        .outerjoin(Signal, Signal.id == Trade.signal_id).where(Trade.id.in_(trade_ids)))).all()
    first_order = dict((await session.execute(
        select(Order.trade_id, func.min(Order.created_at))
        .where(Order.trade_id.in_(trade_ids), Order.leg == Leg.ENTRY.value)
        .group_by(Order.trade_id))).all())
    fills: dict[int, list[FillAt]] = defaultdict(list)
    for tid, side, qty, price, fee, at in (await session.execute(
            select(Order.trade_id, Order.side, Fill.qty, Fill.price, Fill.fee, Fill.filled_at)
            .join(Order, Order.id == Fill.order_id)
            .where(Order.trade_id.in_(trade_ids), Order.leg == Leg.ENTRY.value))).all():
        fills[tid].append(FillAt(Side(side), qty, price, fee, at))
    return {tid: trade_quality(tid, received_at=received, alert_price=alert_price(body),
                               first_order_at=first_order.get(tid), fills=fills[tid])
            for tid, received, body in rows}


@dataclass
class StrategyView:
    name: str
    enabled: bool
    trades: int
    open: int
    fees: Decimal
    stats: Any
    quality: Any
    per_trade: list[TradeQuality]


async def strategy_views(session: AsyncSession) -> list[StrategyView]:
    out = []
    for strat in (await session.scalars(select(Strategy).order_by(Strategy.name))).all():
        rows = list((await session.scalars(
            select(Trade).where(Trade.strategy_id == strat.id)
            .order_by(Trade.id.desc()).limit(QUALITY_WINDOW))).all())
        closed = [Outcome(t.closed_at, net(t)) for t in rows
                  if t.closed_at is not None and t.filled_qty > 0]
        q = await qualities(session, [t.id for t in rows])
        per_trade = sorted((v for v in q.values() if v.received_at is not None),
                           key=lambda v: v.received_at)  # type: ignore[arg-type,return-value]
        out.append(StrategyView(
            name=strat.name, enabled=strat.enabled, trades=len(rows),
            open=sum(1 for t in rows if t.status in OPEN_TRADE_STATUSES),
            fees=sum((t.fees for t in rows), Decimal(0)),
            stats=strategy_stats(closed, [t.created_at for t in rows]),
            quality=summarize(list(q.values())), per_trade=per_trade,
        ))
    return out


# --- alerts and incidents ----------------------------------------------------------------------


async def alerts(session: AsyncSession, *, outcome: str | None = None,
                 strategy: str | None = None, after_id: int | None = None,
                 limit: int = PAGE) -> list[tuple[Signal, int | None]]:
    """Deliveries newest first, each with the trade it started (if any)."""
    stmt = (select(Signal, Trade.id).outerjoin(Trade, Trade.workflow_id == Signal.workflow_id))
    if outcome:
        stmt = stmt.where(Signal.outcome == outcome)
    if strategy:
        stmt = stmt.where(Signal.strategy_name == strategy)
    if after_id is not None:
        stmt = stmt.where(Signal.id > after_id)
    return [(s, t) for s, t in (await session.execute(
        stmt.order_by(Signal.id.desc()).limit(limit))).all()]


async def incidents(session: AsyncSession, status: str | None = "open",
                    limit: int = PAGE) -> list[Incident]:
    stmt = select(Incident)
    if status:
        stmt = stmt.where(Incident.status == status)
    return list((await session.scalars(stmt.order_by(Incident.id.desc()).limit(limit))).all())


async def count_open_incidents(session: AsyncSession) -> int:
    return int(await session.scalar(
        select(func.count()).select_from(Incident).where(Incident.status == "open")) or 0)


async def latest_signal_id(session: AsyncSession) -> int:
    return int(await session.scalar(select(func.max(Signal.id))) or 0)

