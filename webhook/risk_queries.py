"""The webhook's risk reads (docs/design.md#risk): what `GET /risk` shows (states, limits,
today's PnL, exposure) and what intake counts for `max_open_trades`. The states themselves are
read and changed through activities/risk.py, the one writer of `risk_state`; the trading day
and its realized PnL are the daily loss latch's (activities/daily_loss.py)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from sqlalchemy import and_, func, not_, select
from sqlalchemy.ext.asyncio import AsyncSession

from db.models import RiskDay, RiskPnl, Strategy, Trade
from trading.types import HOLDING_STATUSES, OPEN_TRADE_STATUSES, PositionSide

# `max_open_trades` counts the open trades, recorded but not started yet included, so two
# alerts in a row cannot both fit under a limit only one fits under.
COUNTED = OPEN_TRADE_STATUSES
OPEN_LOCK = "tradewire:risk-open:"  # + "account" or "strategy:<id>"


async def latch_figures(session: AsyncSession, day: date) -> dict[str, RiskPnl]:
    """scope → today's PnL as the daily loss latch last computed it (`risk_pnl` of `day`)."""
    rows = await session.scalars(select(RiskPnl).where(RiskPnl.day == day))
    return {row.scope: row for row in rows.all()}


async def start_equity(session: AsyncSession, day: date) -> Decimal | None:
    """The equity `daily_loss_pct` measures `day` against, once the latch has read it."""
    row = await session.get(RiskDay, day)
    return row.equity if row is not None else None


@dataclass(frozen=True)
class Exposure:
    """What the open trades own on one symbol and side, valued at their average entry."""

    symbol: str
    side: str
    qty: Decimal
    notional_usdt: Decimal
    trades: int


async def exposure(session: AsyncSession) -> list[Exposure]:
    owned = Trade.filled_qty - Trade.closed_qty
    rows = (await session.execute(
        select(Trade.symbol, Trade.side, func.sum(owned),
               func.sum(owned * func.coalesce(Trade.avg_entry_price, 0)), func.count(Trade.id))
        .where(Trade.status.in_(HOLDING_STATUSES), owned > 0)
        .group_by(Trade.symbol, Trade.side)
        .order_by(Trade.symbol, Trade.side)
    )).all()
    return [Exposure(symbol, side, Decimal(qty), Decimal(notional), int(n))
            for symbol, side, qty, notional, n in rows]


async def strategies(session: AsyncSession) -> list[Strategy]:
    return list((await session.scalars(select(Strategy).order_by(Strategy.name))).all())


async def strategy_named(session: AsyncSession, name: str) -> Strategy | None:
    return await session.scalar(select(Strategy).where(Strategy.name == name))


async def lock_open_count(session: AsyncSession, scope_key: str) -> None:
    """Serialise, until commit, the intakes that count one scope's open trades (taken only
    while the scope has a `max_open_trades`): alerts of other symbols no longer pass one
    another between the count and the trade row they insert."""
    await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(OPEN_LOCK + scope_key))))


async def count_open_trades(session: AsyncSession, *, strategy_id: int | None,
                            replaced: tuple[int, str, PositionSide] | None = None) -> int:
    """The trades of a strategy (None: of every strategy and none) PENDING to CLOSING.
    `replaced` (strategy id, symbol, side): the trades a reverse closes before it enters,
    which it replaces rather than adds to."""
    q = select(func.count(Trade.id)).where(Trade.status.in_(COUNTED))
    if strategy_id is not None:
        q = q.where(Trade.strategy_id == strategy_id)
    if replaced is not None:
        sid, symbol, side = replaced
        q = q.where(not_(and_(Trade.strategy_id == sid, Trade.symbol == symbol,
                              Trade.side == side.value)))
    return int(await session.scalar(q) or 0)
