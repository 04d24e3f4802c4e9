"""The risk book in PostgreSQL (docs/design.md#risk): the trading states of the account and of
each strategy, their audit trail, and the gate every opening order passes when it is claimed.

The gate runs inside the claim's transaction (activities/records.py `claim_order`), under a
shared advisory lock that a state change takes exclusively: a halt waits for the claims in
flight to commit, and every claim after it sees the halt, so no opening order races past it
(one claimed just before is a working entry the halt's cancel reaches). The limits of a trade's
first claim are measured under one more lock, so two entries cannot both fit under a limit
only one of them fits under.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import notify
from db.models import RiskEvent, RiskState, Strategy, Trade
from trading.risk import (
    ACCOUNT,
    ProposedEntry,
    RiskLimits,
    RiskRefused,
    ScopeBook,
    check_entry,
    scope_label,
    state_refusal,
    strategy_scope,
    stricter,
)
from trading.types import (
    HOLDING_STATUSES,
    OPEN_TRADE_STATUSES,
    NotifyEvent,
    TradeStatus,
    TradingState,
)

STATE_LOCK = "tradewire:risk-state"  # shared by claims, exclusive for a state change
BOOK_LOCK = "tradewire:risk-book"  # a first claim's limits are measured under it


@dataclass(frozen=True)
class ScopeState:
    """One scope's state as its row says (a scope without a row is ACTIVE)."""

    scope: str
    state: TradingState
    latched: bool = False
    flatten: bool = False
    reason: str = ""
    changed_by: str = ""
    changed_at: datetime | None = None


@dataclass(frozen=True)
class Effective:
    """The state that applies to one strategy's trades: the stricter of the account's and the
    strategy's, and the scope it comes from (the account's when both are as strict)."""

    state: TradingState
    scope: str
    flatten: bool = False


@dataclass(frozen=True)
class Stop:
    """A trade a trading state must stop: its entry (cancel), or everything (`flatten`)."""

    workflow_id: str
    flatten: bool
    reason: str


@dataclass(frozen=True)
class Notice:
    """The state that applies to one live trade (shown in its details: signal `trading_state`):
    the stricter of the account's and its strategy's, the scope it comes from (the account's
    when both are as strict) and who set it, why ("alice: end of day"; empty for ACTIVE)."""

    workflow_id: str
    state: TradingState
    scope: str
    reason: str


@dataclass(frozen=True)
class Change:
    before: ScopeState
    after: ScopeState
    event_id: int  # the `risk_event` row that records it


def _row_state(row: RiskState | None, scope: str) -> ScopeState:
    if row is None:
        return ScopeState(scope=scope, state=TradingState.ACTIVE)
    return ScopeState(scope=row.scope, state=TradingState(row.state), latched=row.latched,
                      flatten=row.flatten, reason=row.reason, changed_by=row.changed_by,
                      changed_at=row.changed_at)


def strategy_limits(row: Strategy | None) -> RiskLimits:
    """A strategy row's own limits."""
    if row is None:
        return RiskLimits()
    return RiskLimits(**{n: getattr(row, n) for n in RiskLimits.names()})


async def _lock(session: AsyncSession, name: str, *, shared: bool = False) -> None:
    fn = func.pg_advisory_xact_lock_shared if shared else func.pg_advisory_xact_lock
    await session.execute(select(fn(func.hashtext(name))))


async def effective_state(session: AsyncSession, strategy_name: str | None) -> Effective:
    """The state for a trade of `strategy_name` (None: a trade of no strategy, e.g. adopted)."""
    scopes = [ACCOUNT] + ([strategy_scope(strategy_name)] if strategy_name else [])
    rows = {r.scope: r for r in (await session.scalars(
        select(RiskState).where(RiskState.scope.in_(scopes)))).all()}
    account = _row_state(rows.get(ACCOUNT), ACCOUNT)
    out = Effective(account.state, ACCOUNT, account.flatten)
    if strategy_name:
        own = _row_state(rows.get(strategy_scope(strategy_name)), strategy_scope(strategy_name))
        if stricter(account.state, own.state) is not account.state:
            out = Effective(own.state, own.scope, own.flatten)
    return out


async def scope_book(session: AsyncSession, symbol: str, *, strategy_id: int | None,
                     exclude_trade: int | None) -> ScopeBook:
    """What the scope's trades entering or open hold (a strategy's, or the account's when
    `strategy_id` is None), valued at their entry price: a trade with a position counts what
    it owns at its average entry; one still entering counts the notional it committed."""
    owned = (Trade.filled_qty - Trade.closed_qty) * func.coalesce(Trade.avg_entry_price, 0)
    value = case(
        (Trade.status == TradeStatus.ENTERING.value,
         func.greatest(func.coalesce(Trade.committed_usdt, 0), owned)),
        else_=owned,
    )
    q = select(
        func.count(Trade.id),
        func.coalesce(func.sum(case((Trade.symbol == symbol, value), else_=0)), 0),
        func.coalesce(func.sum(value), 0),
    ).where(Trade.status.in_(HOLDING_STATUSES))
    if strategy_id is not None:
        q = q.where(Trade.strategy_id == strategy_id)
    if exclude_trade is not None:
        q = q.where(Trade.id != exclude_trade)
    count, on_symbol, total = (await session.execute(q)).one()
    return ScopeBook(open_trades=int(count), symbol_usdt=Decimal(on_symbol),
                     exposure_usdt=Decimal(total))


async def side_notional(session: AsyncSession, symbol: str, side: str, *,
                        exclude_trade: int) -> Decimal:
    """What the other open trades hold on `symbol`'s `side`, at their entry prices: the
    position an entry adds to, for the exchange's risk-limit tiers (trading/tiers.py)."""
    owned = (Trade.filled_qty - Trade.closed_qty) * func.coalesce(Trade.avg_entry_price, 0)
    total = await session.scalar(
        select(func.coalesce(func.sum(owned), 0)).where(
            Trade.symbol == symbol, Trade.side == side, Trade.id != exclude_trade,
            Trade.status.in_(HOLDING_STATUSES)))
    return Decimal(total or 0)


async def gate_opening(session: AsyncSession, *, trade_id: int, symbol: str,
                       entry: ProposedEntry | None, account_limits: RiskLimits) -> None:
    """In a claim's transaction, before an opening order is claimed: refuse it (RiskRefused,
    so the transaction rolls back and nothing is claimed or sent) when the state of its trade's
    strategy or of the account does not let it open; on the trade's first claim (`entry`
    given), when it breaks a limit. Records the notional the trade commits."""
    await _lock(session, STATE_LOCK, shared=True)
    trade = await _trade_of(session, trade_id)
    if trade is None:
        return  # the claim's own checks say what is wrong with a trade without a row
    status, strategy_id, strategy = trade
    refusal = await _opening_refusal(session, strategy)
    if refusal is not None:
        raise refusal
    if status != TradeStatus.PENDING.value:
        return  # a later order of an entry already admitted (a re-price, the next part)
    own = strategy_limits(strategy)
    if entry is None:
        # Fail closed: an entry that cannot be valued is never let past a limit unmeasured.
        if own.any or account_limits.any:
            raise RiskRefused(scope=ACCOUNT, limit="price",
                              message="the entry's price is unknown, so it cannot be measured "
                                      "against the risk limits; nothing was sent")
        return
    if own.any or account_limits.any:
        await _lock(session, BOOK_LOCK)
    if own.any and strategy is not None:
        check_entry(own, strategy_scope(strategy.name), entry,
                    await scope_book(session, symbol, strategy_id=strategy_id,
                                     exclude_trade=trade_id))
    if account_limits.any:
        check_entry(account_limits, ACCOUNT, entry,
                    await scope_book(session, symbol, strategy_id=None, exclude_trade=trade_id))
    await session.execute(
        Trade.__table__.update().where(Trade.id == trade_id).values(committed_usdt=entry.notional)
    )


async def _trade_of(session: AsyncSession, trade_id: int) -> Any:
    """(status, strategy id, strategy row or None) of a trade; None: no such row."""
    return (await session.execute(
        select(Trade.status, Trade.strategy_id, Strategy)
        .outerjoin(Strategy, Strategy.id == Trade.strategy_id)
        .where(Trade.id == trade_id)
    )).first()


async def _opening_refusal(session: AsyncSession, strategy: Strategy | None) -> RiskRefused | None:
    eff = await effective_state(session, strategy.name if strategy is not None else None)
    return state_refusal(eff.state, eff.scope, opens=True)


async def opening_refused(session: AsyncSession, trade_id: int) -> RiskRefused | None:
    """Whether an opening order of the trade may be sent now, by the states only: for an entry
    claimed before a state change and sent only after it (a re-send whose first attempt died
    between its claim and its send). Under the same shared lock as a claim, so a halt in
    progress is waited for."""
    await _lock(session, STATE_LOCK, shared=True)
    trade = await _trade_of(session, trade_id)
    if trade is None:
        return None
    return await _opening_refusal(session, trade[2])


class RiskBook:
    """Reading and changing the trading states (the kill switch, the latch)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def states(self) -> dict[str, ScopeState]:
        """Every scope with a row (the account's is always in the answer)."""
        async with self._sessionmaker() as session:
            rows = (await session.scalars(select(RiskState).order_by(RiskState.scope))).all()
        out = {r.scope: _row_state(r, r.scope) for r in rows}
        out.setdefault(ACCOUNT, ScopeState(scope=ACCOUNT, state=TradingState.ACTIVE))
        return out

    async def ever_changed(self) -> bool:
        """Whether any scope's state was ever set (a scope without a row was never changed)."""
        async with self._sessionmaker() as session:
            return bool(await session.scalar(select(func.count()).select_from(RiskState)))

    async def effective(self, strategy_name: str | None) -> Effective:
        async with self._sessionmaker() as session:
            return await effective_state(session, strategy_name)

    async def set_state(self, scope: str, state: TradingState, *, actor: str, reason: str,
                        flatten: bool = False, latched: bool = False) -> Change:
        """Change a scope's state and record who, when and why. Waits for the opening claims
        in flight (they hold the state lock shared): once this returns, none is claimed past
        it. Resuming (ACTIVE) clears the latch and the flatten flag."""
        async with self._sessionmaker() as session, session.begin():
            await _lock(session, STATE_LOCK)
            before = _row_state(await session.get(RiskState, scope, with_for_update=True), scope)
            values = {"state": state.value, "latched": latched, "flatten": flatten,
                      "reason": reason, "changed_by": actor, "changed_at": func.now()}
            await session.execute(
                insert(RiskState).values(scope=scope, **values)
                .on_conflict_do_update(index_elements=[RiskState.scope], set_=values)
            )
            event = RiskEvent(scope=scope, state_before=before.state.value,
                              state_after=state.value, flatten=flatten, latched=latched,
                              actor=actor, reason=reason)
            session.add(event)
            await session.flush()
            after = _row_state(await session.get(RiskState, scope, populate_existing=True), scope)
            if (before.state, before.flatten) != (after.state, after.flatten):
                await notify.enqueue(
                    session, NotifyEvent.RISK_STATE_CHANGED,
                    notify.risk_payload(scope=scope, before=before, after=after, actor=actor,
                                        reason=reason),
                    strategy_id=await notify.strategy_id_of_scope(session, scope))
        return Change(before=before, after=after, event_id=event.id)

    async def _open_trades(self, *, only_if_restricted: bool
                           ) -> tuple[dict[str, ScopeState], list[Any]]:
        """The scopes' rows and the open trades (workflow id, status, strategy name), read in
        one session; no trades when `only_if_restricted` and every scope is ACTIVE."""
        async with self._sessionmaker() as session:
            rows = {r.scope: _row_state(r, r.scope) for r in
                    (await session.scalars(select(RiskState))).all()}
            if only_if_restricted and all(r.state is TradingState.ACTIVE for r in rows.values()):
                return rows, []
            trades = (await session.execute(
                select(Trade.workflow_id, Trade.status, Strategy.name)
                .outerjoin(Strategy, Strategy.id == Trade.strategy_id)
                .where(Trade.status.in_(OPEN_TRADE_STATUSES))
                .order_by(Trade.id)
            )).all()
        return rows, list(trades)

    async def to_stop(self) -> list[Stop]:
        """The trades a state change must reach (the kill switch delivers these at once, the
        account watcher again every round): under a state that does not let them open, the
        trades not yet past their entry (PENDING, ENTERING) stop it and cancel their working
        entry orders; under a halt with flatten, every open trade of the scope closes what it
        owns. Sending the same stop twice is harmless (the trade's `cancel` merges them)."""
        rows, trades = await self._open_trades(only_if_restricted=True)
        account = rows.get(ACCOUNT, ScopeState(scope=ACCOUNT, state=TradingState.ACTIVE))
        out: list[Stop] = []
        for workflow_id, status, name in trades:
            own = rows.get(strategy_scope(name)) if name else None
            scopes = [s for s in (account, own) if s is not None and s.state.strictness > 0]
            if not scopes:
                continue
            flatten = any(s.flatten and s.state is TradingState.HALTED for s in scopes)
            entering = status in (TradeStatus.PENDING.value, TradeStatus.ENTERING.value)
            if flatten or entering:
                why = max(scopes, key=lambda s: s.state.strictness)
                out.append(Stop(workflow_id=workflow_id, flatten=flatten,
                                reason=f"risk: {scope_label(why.scope)} {why.state.value}"
                                       f"{' with flatten' if flatten else ''} "
                                       f"({why.changed_by}: {why.reason})"))
        return out

    async def notices(self) -> list[Notice]:
        """The state that applies to every live trade (PENDING to CLOSING), ACTIVE ones
        included (the account watcher tells each trade when its state changes, a resume
        too), from one read of the states and one of the trades."""
        rows, trades = await self._open_trades(only_if_restricted=False)
        account = rows.get(ACCOUNT, ScopeState(scope=ACCOUNT, state=TradingState.ACTIVE))
        out: list[Notice] = []
        for workflow_id, _, name in trades:
            why = account
            own = rows.get(strategy_scope(name)) if name else None
            # As effective_state: the strategy's only when strictly stricter.
            if own is not None and stricter(account.state, own.state) is not account.state:
                why = own
            active = why.state is TradingState.ACTIVE
            out.append(Notice(workflow_id=workflow_id, state=why.state,
                              scope=ACCOUNT if active else why.scope,
                              reason="" if active else f"{why.changed_by}: {why.reason}"))
        return out

    async def events(self, limit: int = 20) -> list[RiskEvent]:
        """The newest changes first."""
        async with self._sessionmaker() as session:
            return list((await session.scalars(
                select(RiskEvent).order_by(RiskEvent.id.desc()).limit(limit))).all())
