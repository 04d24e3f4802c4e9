"""The daily loss latch (docs/design.md#risk), run by the account watcher after each round's
reads: today's PnL of each strategy and of the account, held against their daily loss limits;
a breach latches the scope's trading state until an operator changes it.

Today's PnL of a scope, from what is already known (no request to the exchange of its own):

* realized with fees: Σ (realized_pnl − fee) over the `fill` rows of the scope's trades with
  `filled_at` at or after the day's start. BitUnix's (and the paper exchange's) `realizedPNL`
  is gross and its `fee` a positive cost, so a fill's net is `realized_pnl − fee`;
* unrealized at mark: per open trade, what it owns (its opening orders' fills minus its closing
  orders', from the `order` rows as the ownership audit counts them) valued from its average
  entry (those orders' average price) to the mark the round's position read implies
  (trading.risk.implied_mark: a position's unrealized PnL is at the mark).

The base of a percentage limit is the account's equity at the day's start (`risk_day`): read
once a day, at the first check of the day that needs it, as available + frozen + margin +
unrealized PnL (the wallet balance with what the open positions would realize now).

What the latch keeps in PostgreSQL, so every latch object (the watcher's, a restarted one's,
the worker's startup round's) judges alike: the loss an operator's change acknowledged
(`risk_state.acknowledged_loss`) and each checked scope's figure (`risk_pnl`, shown by
`GET /risk`). A check with nothing configured and nothing latched only reads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities import notify
from activities.risk import RiskBook, ScopeState
from db.models import (
    Fill,
    Incident,
    Order,
    RiskDay,
    RiskEvent,
    RiskPnl,
    RiskState,
    Strategy,
    Trade,
)
from trading.risk import (
    ACCOUNT,
    RiskLimits,
    daily_loss_breach,
    implied_mark,
    scope_label,
    strategy_scope,
    unrealized_pnl,
)
from trading.types import (
    OPEN_TRADE_STATUSES,
    IncidentAction,
    IncidentKind,
    IncidentStatus,
    Leg,
    NotifyEvent,
    PositionSide,
    TradingState,
)

if TYPE_CHECKING:  # annotations only: GET /risk (the dashboard's overview) reads no exchange
    from exchange.client import BitunixClient
    from exchange.models import Account

log = logging.getLogger("activities.daily_loss")
LATCH_ACTOR = "daily-loss-latch"  # the `changed_by` of a state the latch set
INCIDENT_SYMBOL = "*"  # a daily loss concerns every symbol of its scope
ZERO = Decimal(0)
Key = tuple[str, PositionSide]
OPENING = tuple(leg.value for leg in Leg if leg.opens)
CLOSING = tuple(leg.value for leg in Leg if leg.closes)
# `risk_pnl` keeps figures to this precision: an average entry is a quotient of many digits.
STORED = Decimal("0.00000001")


@dataclass(frozen=True)
class DayPnl:
    """One scope's PnL today: realized with fees, and unrealized at mark of what it owns."""

    realized: Decimal = ZERO
    unrealized: Decimal = ZERO

    @property
    def pnl(self) -> Decimal:
        return self.realized + self.unrealized

    def __add__(self, other: DayPnl) -> DayPnl:
        return DayPnl(self.realized + other.realized, self.unrealized + other.unrealized)


@dataclass(frozen=True)
class Realized:
    """The realized PnL of a set of fills: gross (the exchange's `realized_pnl`), the fees
    paid (a positive cost), and the net the latch counts."""

    gross: Decimal = ZERO
    fees: Decimal = ZERO

    @property
    def net(self) -> Decimal:
        return self.gross - self.fees


@dataclass(frozen=True)
class Today:
    """Today's PnL per strategy name (None: trades of no strategy, e.g. adopted quantity) and
    for the whole account."""

    day: date
    start: datetime
    strategies: dict[str | None, DayPnl] = field(default_factory=dict)

    @property
    def account(self) -> DayPnl:
        return sum(self.strategies.values(), DayPnl())

    def of(self, scope: str) -> DayPnl:
        if scope == ACCOUNT:
            return self.account
        return self.strategies.get(scope.removeprefix("strategy:"), DayPnl())


def trading_day(now: datetime, timezone: str) -> tuple[date, datetime]:
    """The trading day `now` falls in and its start: midnight in `timezone`."""
    tz = ZoneInfo(timezone)
    day = now.astimezone(tz).date()
    return day, datetime.combine(day, time.min, tzinfo=tz)


def account_equity(account: Account) -> Decimal:
    """The account's equity: available + frozen + position margin + unrealized PnL (cross and
    isolated). The wallet balance plus what the open positions would realize now."""
    return (account.available + account.frozen + account.margin
            + account.cross_unrealized_pnl + account.isolation_unrealized_pnl)


def marks_of(positions: Mapping[Key, tuple[Decimal, Decimal | None, Decimal]]) -> dict[Key, Decimal]:
    """(symbol, side) → the mark price each position implies, from (qty, average open price,
    unrealized PnL) as the position read gave them; positions that do not say are left out."""
    out: dict[Key, Decimal] = {}
    for (symbol, side), (qty, avg_open, unrealized) in positions.items():
        mark = implied_mark(side, qty, avg_open, unrealized)
        if mark is not None:
            out[(symbol, side)] = mark
    return out


async def realized_since(session: AsyncSession, since: datetime) -> dict[str | None, Realized]:
    """The realized PnL of the fills at or after `since`, per strategy name (None: trades of
    no strategy, e.g. adopted quantity). A fill's `realized_pnl` is gross and its `fee` a
    positive cost (paper/ledger.py, as BitUnix reports them)."""
    rows = await session.execute(
        select(Strategy.name, func.coalesce(func.sum(Fill.realized_pnl), 0),
               func.coalesce(func.sum(Fill.fee), 0))
        .select_from(Fill)
        .join(Order, Order.id == Fill.order_id)
        .join(Trade, Trade.id == Order.trade_id)
        .outerjoin(Strategy, Strategy.id == Trade.strategy_id)
        .where(Fill.filled_at >= since)
        .group_by(Strategy.name)
    )
    return {name: Realized(Decimal(gross), Decimal(fees)) for name, gross, fees in rows.all()}


async def today_pnl(session: AsyncSession, day: date, start: datetime,
                    marks: Mapping[Key, Decimal]) -> Today:
    """Today's PnL per strategy (see the module's docstring). An open trade on a position the
    read did not show (or without a known entry price) counts no unrealized PnL."""
    per: dict[str | None, DayPnl] = {
        name: DayPnl(realized=r.net) for name, r in (await realized_since(session, start)).items()
    }
    opening = Order.leg.in_(OPENING)
    priced = and_(opening, Order.avg_price.is_not(None))
    rows = await session.execute(
        select(
            Trade.symbol, Trade.side, Trade.avg_entry_price, Strategy.name,
            func.coalesce(func.sum(Order.filled_qty).filter(opening), 0),
            func.coalesce(func.sum(Order.filled_qty).filter(Order.leg.in_(CLOSING)), 0),
            func.coalesce(func.sum(Order.filled_qty * Order.avg_price).filter(priced), 0),
            func.coalesce(func.sum(Order.filled_qty).filter(priced), 0),
        )
        .join(Order, Order.trade_id == Trade.id)
        .outerjoin(Strategy, Strategy.id == Trade.strategy_id)
        .where(Trade.status.in_(OPEN_TRADE_STATUSES))
        .group_by(Trade.id, Strategy.name)
    )
    for symbol, side, avg_entry, name, filled, closed, value, priced_qty in rows.all():
        owned = Decimal(filled) - Decimal(closed)
        pos_side = PositionSide(side)
        mark = marks.get((symbol, pos_side))
        entry = Decimal(value) / Decimal(priced_qty) if priced_qty else avg_entry
        if owned <= 0 or mark is None or entry is None:
            continue
        gain = unrealized_pnl(pos_side, owned, Decimal(entry), mark)
        per[name] = per.get(name, DayPnl()) + DayPnl(unrealized=gain)
    return Today(day=day, start=start, strategies=per)


@dataclass(frozen=True)
class Latched:
    """A scope the latch changed this check."""

    scope: str
    state: TradingState
    reason: str
    incident_id: int | None


def _daily(limits: RiskLimits) -> RiskLimits:
    return RiskLimits(daily_loss_usdt=limits.daily_loss_usdt, daily_loss_pct=limits.daily_loss_pct)


def _money(value: Decimal) -> str:
    return f"{format(value.quantize(Decimal('0.01')), 'f')} USDT"


class DailyLossLatch:
    """Checks today's PnL against the daily loss limits and latches what breaches them.

    The rule a trader can count on: a breach latches its scope (`latch_state`, unless the
    scope is already as strict) and raises a `daily_loss` incident; the latch holds until an
    operator changes the scope's state. Such a change acknowledges the loss as it is then:
    the same day, the scope latches again only once its loss grows beyond that level (a resume
    is not undone by the loss it was made in spite of, and a loss that keeps growing is
    stopped again). The level is kept with the scope's `risk_state` row, so a restarted
    watcher and the worker's startup round hold it too. The next day starts afresh."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession], client: BitunixClient,
                 *, account_limits: RiskLimits = RiskLimits(),  # noqa: B008 - frozen, no state
                 latch_state: TradingState = TradingState.HALTED, timezone: str = "UTC",
                 flatten: bool = False,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        if latch_state is TradingState.ACTIVE:
            raise ValueError("the daily loss latch sets HALTED or REDUCE_ONLY, not ACTIVE")
        if flatten and latch_state is not TradingState.HALTED:
            raise ValueError("a latch flattens only when it sets HALTED")
        # TRADEWIRE_RISK_LATCH_FLATTEN: the breach also closes every position of the scope,
        # as `tradewire risk halt --flatten` does.
        self.flatten = flatten
        self._sessionmaker = sessionmaker
        self._client = client
        self.book = RiskBook(sessionmaker)
        self.account_limits = _daily(account_limits)
        self.latch_state = latch_state
        self.timezone = timezone
        self._clock = clock
        self._equity_day: date | None = None  # the day whose starting equity is kept

    async def limits(self) -> dict[str, RiskLimits]:
        """Every scope with a daily loss limit."""
        out = {ACCOUNT: self.account_limits} if self.account_limits.any else {}
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(Strategy.name, Strategy.daily_loss_usdt, Strategy.daily_loss_pct)
                .where((Strategy.daily_loss_usdt.is_not(None))
                       | (Strategy.daily_loss_pct.is_not(None)))
            )
            for name, usdt, pct in rows.all():
                out[strategy_scope(name)] = RiskLimits(daily_loss_usdt=usdt, daily_loss_pct=pct)
        return out

    async def today(self, marks: Mapping[Key, Decimal]) -> Today:
        day, start = trading_day(self._clock(), self.timezone)
        async with self._sessionmaker() as session:
            return await today_pnl(session, day, start, marks)

    async def start_equity(self, day: date) -> Decimal:
        """The equity at the start of `day`: its `risk_day` row, or read now and kept (the
        first writer wins, so every reader of the day uses one base)."""
        async with self._sessionmaker() as session:
            known = await session.get(RiskDay, day)
            if known is not None:
                return known.equity
        equity = account_equity(await self._client.account())
        async with self._sessionmaker() as session, session.begin():
            await session.execute(insert(RiskDay).values(day=day, equity=equity)
                                  .on_conflict_do_nothing(index_elements=[RiskDay.day]))
            row = await session.get(RiskDay, day)
            assert row is not None
            log.info("daily loss: the equity at the start of %s is %s", day, _money(row.equity))
            return row.equity

    async def _keep_start_equity(self) -> None:
        """The day's starting equity is kept whatever the limits (once a day: one `account`
        read and one row), so `GET /risk` and the dashboard's overview always show the
        account's equity; a failed read is tried again next round."""
        day, _ = trading_day(self._clock(), self.timezone)
        if self._equity_day == day:
            return
        try:
            await self.start_equity(day)
        except Exception as exc:  # noqa: BLE001 - a figure to show, never a reason to stop a round
            log.warning("daily loss: the equity at the start of %s not read yet: %s", day, exc)
            return
        self._equity_day = day

    async def check(self, marks: Mapping[Key, Decimal]) -> list[Latched]:
        """One check (the account watcher's round): latch the scopes that breach, keep their
        incidents current. Returns what it latched."""
        await self._keep_start_equity()
        limits = await self.limits()
        states = await self.book.states()
        latched: list[Latched] = []
        today = None
        if limits:
            today = await self.today(marks)
            equity = None
            if any(lim.daily_loss_pct is not None for lim in limits.values()):
                equity = await self.start_equity(today.day)
            latches = await self._latched_today(today.start)
            for scope, lim in sorted(limits.items()):
                state = states.get(scope, ScopeState(scope=scope, state=TradingState.ACTIVE))
                reason = await self._breach(scope, lim, today.of(scope).pnl, equity, state,
                                            latches.get(scope))
                if reason is None or state.state.strictness >= self.latch_state.strictness:
                    continue
                change = await self.book.set_state(scope, self.latch_state, actor=LATCH_ACTOR,
                                                   reason=reason, latched=True,
                                                   flatten=self.flatten)
                states[scope] = change.after
                latched.append(Latched(scope, self.latch_state, reason, None))
        incidents = await self._keep_incidents(states)
        # After the incidents: a figure for GET /risk matters less than a latch's incident.
        await self._keep_figures(today, limits)
        out = [Latched(x.scope, x.state, x.reason, incidents.get(x.scope)) for x in latched]
        for x in out:
            log.error("daily loss: the %s is latched %s: %s (incident #%s; `tradewire risk "
                      "resume%s` lifts it)", scope_label(x.scope), x.state.value, x.reason,
                      x.incident_id, "" if x.scope == ACCOUNT
                      else f" --strategy {x.scope.removeprefix('strategy:')}")
        return out

    async def _breach(self, scope: str, limits: RiskLimits, pnl: Decimal,
                      equity: Decimal | None, state: ScopeState,
                      latched_at: datetime | None) -> str | None:
        """Why `scope` must latch now; None: it need not."""
        breach = daily_loss_breach(limits, scope, pnl, equity)
        if state.latched or latched_at is None or state.changed_at is None \
                or state.changed_at <= latched_at:
            return breach
        # An operator changed the state after today's latch: that acknowledged the loss then.
        level = await self._acknowledged(state, max(-pnl, ZERO))
        if breach is None or -pnl <= level:
            return None
        return (f"{breach}; a loss beyond the {_money(level)} acknowledged when "
                f"{state.changed_by} set it {state.state.value}")

    async def _acknowledged(self, state: ScopeState, loss: Decimal) -> Decimal:
        """The loss the operator's change `state` acknowledged: recorded with the scope's row
        by the first check that sees the change (`loss`, today's loss now), read back by every
        later one, whichever process makes it (a level belongs to one change: its
        `changed_at`)."""
        async with self._sessionmaker() as session:
            known = (await session.execute(
                select(RiskState.acknowledged_loss, RiskState.acknowledged_at)
                .where(RiskState.scope == state.scope))).one_or_none()
        if known is not None and known[1] == state.changed_at and known[0] is not None:
            return known[0]
        async with self._sessionmaker() as session, session.begin():
            # Only for that change, and only if nobody recorded it meanwhile: the first wins.
            taken = await session.scalar(
                update(RiskState)
                .where(RiskState.scope == state.scope, RiskState.changed_at == state.changed_at,
                       RiskState.acknowledged_at.is_distinct_from(state.changed_at))
                .values(acknowledged_loss=loss, acknowledged_at=state.changed_at)
                .returning(RiskState.acknowledged_loss))
            if taken is None:
                known = (await session.execute(
                    select(RiskState.acknowledged_loss, RiskState.acknowledged_at)
                    .where(RiskState.scope == state.scope))).one_or_none()
        if taken is not None:
            log.warning("daily loss: the %s was set %s by %s after today's latch; it latches "
                        "again if today's loss grows beyond %s", scope_label(state.scope),
                        state.state.value, state.changed_by, _money(taken))
            return taken
        if known is not None and known[1] == state.changed_at and known[0] is not None:
            return known[0]
        return loss  # the state changed again meanwhile: the next round sees the new change

    async def _keep_figures(self, today: Today | None, limits: Mapping[str, RiskLimits]) -> None:
        """`risk_pnl`: the figure each scope with a daily limit was judged by this round
        (today's, when there are limits), written only where it changed; the rows of scopes
        no longer checked are removed."""
        want = {} if today is None else {
            scope: (today.day, today.of(scope).realized.quantize(STORED),
                    today.of(scope).unrealized.quantize(STORED))
            for scope in limits}
        async with self._sessionmaker() as session:
            have = {r.scope: (r.day, r.realized, r.unrealized)
                    for r in (await session.scalars(select(RiskPnl))).all()}
        changed = {s: v for s, v in want.items() if have.get(s) != v}
        gone = set(have) - set(want)
        if not changed and not gone:
            return
        async with self._sessionmaker() as session, session.begin():
            if gone:
                await session.execute(delete(RiskPnl).where(RiskPnl.scope.in_(gone)))
            for scope, (day, realized, unrealized) in sorted(changed.items()):
                values = {"day": day, "realized": realized, "unrealized": unrealized,
                          "at": func.now()}
                await session.execute(
                    insert(RiskPnl).values(scope=scope, **values)
                    .on_conflict_do_update(index_elements=[RiskPnl.scope], set_=values))

    async def _latched_today(self, start: datetime) -> dict[str, datetime]:
        """scope → when the latch last latched it today."""
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(RiskEvent.scope, func.max(RiskEvent.at))
                .where(RiskEvent.actor == LATCH_ACTOR, RiskEvent.latched.is_(True),
                       RiskEvent.at >= start)
                .group_by(RiskEvent.scope)
            )
            return {scope: at for scope, at in rows.all()}

    async def _keep_incidents(self, states: Mapping[str, ScopeState]) -> dict[str, int]:
        """A current `daily_loss` incident for every latched scope (raised if it has none),
        and none for a scope no longer latched (resolved, saying who changed it). Returns
        scope → the current incident's id."""
        now = datetime.now(UTC)
        latched = {s: st for s, st in states.items() if st.latched}
        prefix = f"{IncidentKind.DAILY_LOSS.value}:"
        async with self._sessionmaker() as session:  # a read first: most rounds change nothing
            open_now = {fp.removeprefix(prefix): row_id for fp, row_id in (await session.execute(
                select(Incident.fingerprint, Incident.id)
                .where(Incident.kind == IncidentKind.DAILY_LOSS.value,
                       Incident.cleared_at.is_(None)))).all()}
        if open_now.keys() == latched.keys():
            return open_now
        out: dict[str, int] = {}
        async with self._sessionmaker() as session, session.begin():
            current = {
                row.fingerprint: row for row in (await session.scalars(
                    select(Incident).where(Incident.kind == IncidentKind.DAILY_LOSS.value,
                                           Incident.cleared_at.is_(None)).with_for_update()
                )).all()
            }
            for fp, row in current.items():
                scope = fp.removeprefix(f"{IncidentKind.DAILY_LOSS.value}:")
                if scope in latched:
                    out[scope] = row.id
                    continue
                st = states.get(scope, ScopeState(scope=scope, state=TradingState.ACTIVE))
                why = (f"the {scope_label(scope)} was set {st.state.value} by "
                       f"{st.changed_by or 'nobody'}" + (f": {st.reason}" if st.reason else ""))
                row.cleared_at = row.last_seen = now
                if row.status == IncidentStatus.OPEN:
                    row.status, row.resolution = IncidentStatus.RESOLVED.value, why
                row.actions = [*row.actions, _action(IncidentAction.RESOLVE, why, now)]
                log.warning("incident #%d daily_loss: cleared, %s", row.id, why)
                await notify.incident_events(session, (), [row])
            for scope, st in latched.items():
                fp = f"{IncidentKind.DAILY_LOSS.value}:{scope}"
                if fp in current:
                    continue
                detail = (f"the {scope_label(scope)} is latched {st.state.value}: {st.reason}")
                row_id = await session.scalar(
                    insert(Incident).values(
                        fingerprint=fp, kind=IncidentKind.DAILY_LOSS.value,
                        symbol=INCIDENT_SYMBOL, side=None, exchange_qty=ZERO, owned_qty=ZERO,
                        detail=detail, first_seen=st.changed_at or now, last_seen=now,
                        status=IncidentStatus.OPEN.value,
                        actions=[_action(IncidentAction.REPORT, "reported", now),
                                 _action(IncidentAction.LATCH, detail, now)],
                    )
                    .on_conflict_do_nothing(index_elements=[Incident.fingerprint],
                                            index_where=Incident.cleared_at.is_(None))
                    .returning(Incident.id)
                )
                if row_id is not None:
                    out[scope] = row_id
                    await notify.enqueue(session, NotifyEvent.INCIDENT_RAISED, {
                        "incident_id": row_id, "kind": IncidentKind.DAILY_LOSS.value,
                        "symbol": INCIDENT_SYMBOL, "detail": detail,
                        "status": IncidentStatus.OPEN.value,
                    }, strategy_id=await notify.strategy_id_of_scope(session, scope))
        return out


def _action(action: IncidentAction, note: str, at: datetime) -> dict[str, str]:
    return {"at": at.isoformat(), "by": LATCH_ACTOR, "action": action.value, "note": note}
