"""The risk API (admin token; docs/design.md#risk): show the trading states, limits, today's PnL
and exposure (`GET /risk`), and the kill switch: `POST /risk/halt`, `/risk/reduce-only`,
`/risk/resume` for the account or one strategy. A change is recorded with who, when and why
(activities/risk.py `RiskBook`), then delivered at once: every trade it must stop gets a
`cancel` (with `flatten` under a halt with flatten). The account watcher delivers the same
stops again every round, so a trade this call could not reach is reached within one interval."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints

from activities.daily_loss import Realized, realized_since, trading_day
from activities.risk import Notice, RiskBook, ScopeState, Stop, strategy_limits
from db.models import RiskEvent, RiskPnl
from trading.risk import ACCOUNT, HUNDRED, RiskLimits, scope_label, strategy_scope, stricter
from trading.types import TradingState
from webhook import risk_queries
from webhook.admin import jsonable, require_admin, row_dict
from webhook.apidoc import RiskChanged, RiskView, answers
from webhook.deps import AppState
from workflows.messages import CancelRequest, TradeMessages, TradingStateNotice

log = logging.getLogger("webhook")
router = APIRouter(prefix="/risk", tags=["risk"])
API = "api"  # the actor of a change that names none
EVENTS_SHOWN = 20
# Signals in flight at once: a halt reaches many trades within a few round trips, without
# flooding Temporal.
SIGNALS_AT_ONCE = 16

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
Actor = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=80,
                                         pattern=r"^[^\x00]*$")]
StrategyName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1,
                                                max_length=64, pattern=r"^[^\x00]*$")]


class ChangeRequest(BaseModel):
    """The scope (a strategy's name; none: the account), why, and who asks (`tradewire risk`
    sends `cli:<user>`)."""

    model_config = ConfigDict(extra="forbid")

    strategy: StrategyName | None = None
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000,
                                             pattern=r"^[^\x00]*$")] | None = None
    by: Actor = API


class HaltRequest(ChangeRequest):
    """`flatten`: also close every position the scope's trades own (each through its own
    close path) and, for the account, flatten quantity no trade owns (incident policy)."""

    flatten: bool = False


def scope_dict(s: ScopeState) -> dict[str, Any]:
    return {"scope": s.scope, "label": scope_label(s.scope), "state": s.state.value,
            "latched": s.latched, "flatten": s.flatten, "reason": s.reason or None,
            "changed_by": s.changed_by or None, "changed_at": jsonable(s.changed_at)}


def limits_dict(limits: Any) -> dict[str, Any]:
    return {name: jsonable(value) for name, value in limits.as_dict().items()}


CENT = Decimal("0.01")


def scope_pnl(figure: RiskPnl | None, realized: Decimal, limits: RiskLimits,
              equity: Decimal | None) -> dict[str, Any]:
    """A scope's PnL today: the daily loss latch's figure (`source` "latch": realized with
    fees plus unrealized at mark, as of `at`, when it last changed) where it keeps one, else
    the realized PnL only (`source` "realized"). `loss_limit_usdt`: the loss that latches the
    scope, the tighter of its daily limits (a percentage once the day's equity is read)."""
    bounds = [limits.daily_loss_usdt] if limits.daily_loss_usdt is not None else []
    if limits.daily_loss_pct is not None and equity is not None:
        bounds.append((equity * limits.daily_loss_pct / HUNDRED).quantize(CENT))
    bound = jsonable(min(bounds)) if bounds else None
    if figure is None:
        return {"source": "realized", "pnl": jsonable(realized), "realized": jsonable(realized),
                "unrealized": None, "at": None, "loss_limit_usdt": bound}
    return {"source": "latch", "pnl": jsonable(figure.realized + figure.unrealized),
            "realized": jsonable(figure.realized), "unrealized": jsonable(figure.unrealized),
            "at": jsonable(figure.at), "loss_limit_usdt": bound}


@router.get("", responses={200: {"model": RiskView}} | answers(401, 413, 422))
async def show_risk(state: AppState = Depends(require_admin)) -> JSONResponse:
    """Every scope's state (with who, when, why), each strategy's effective state and limits,
    the account's limits, today's PnL (the latch's figure where it keeps one) and exposure per
    symbol, and the newest changes."""
    book = RiskBook(state.sessionmaker)
    states = await book.states()
    account = states[ACCOUNT]
    day, since = trading_day(datetime.now(UTC), state.settings.risk_day_timezone)
    async with state.sessionmaker() as session:
        rows = await risk_queries.strategies(session)
        pnl = await realized_since(session, since)
        figures = await risk_queries.latch_figures(session, day)
        equity = await risk_queries.start_equity(session, day)
        held = await risk_queries.exposure(session)
    events = await book.events(EVENTS_SHOWN)
    strategies = []
    for row in rows:
        own = states.get(strategy_scope(row.name))
        own_state = own.state if own is not None else TradingState.ACTIVE
        # The stricter wins; the account's when both are as strict (activities/risk.py).
        effective = account if stricter(account.state, own_state) is account.state else own
        assert effective is not None
        day_pnl = pnl.get(row.name)
        limits = strategy_limits(row)
        today = scope_pnl(figures.get(strategy_scope(row.name)),
                          day_pnl.net if day_pnl is not None else Decimal(0), limits, equity)
        strategies.append({
            "name": row.name, "enabled": row.enabled, "state": own_state.value,
            "effective": {"state": effective.state.value, "scope": effective.scope},
            "limits": limits_dict(limits), "today_pnl": today["pnl"], "today": today,
        })
    total = Realized(sum((p.gross for p in pnl.values()), Decimal(0)),
                     sum((p.fees for p in pnl.values()), Decimal(0)))
    return JSONResponse({
        "account": scope_dict(account),
        "scopes": [scope_dict(s) for s in states.values()],
        "strategies": strategies,
        "limits": limits_dict(state.settings.risk_limits),
        "today": {"day": day.isoformat(), "timezone": state.settings.risk_day_timezone,
                  "since": since.isoformat(), "realized_pnl": jsonable(total.gross),
                  "fees": jsonable(total.fees), "net_pnl": jsonable(total.net),
                  "start_equity": jsonable(equity),
                  "account": scope_pnl(figures.get(ACCOUNT), total.net,
                                       state.settings.risk_limits, equity)},
        "exposure": [{"symbol": e.symbol, "side": e.side, "qty": jsonable(e.qty),
                      "notional_usdt": jsonable(e.notional_usdt), "trades": e.trades}
                     for e in held],
        "events": [row_dict(e) for e in events],
    })


_CHANGE_ANSWERS = {200: {"model": RiskChanged, "description": "the state is changed and "
                         "delivered to the trades it stops"}} | answers(
    400, 401, 404, 413, 422, e404="no strategy of that name")


@router.post("/halt", responses=_CHANGE_ANSWERS)
async def halt(request: HaltRequest, state: AppState = Depends(require_admin)) -> JSONResponse:
    """HALTED: nothing new is sent (exit alerts included); working entry orders are cancelled;
    TP/SL stay. With `flatten`, every position is closed too."""
    return await _change(state, request, TradingState.HALTED, flatten=request.flatten)


@router.post("/reduce-only", responses=_CHANGE_ANSWERS)
async def reduce_only(request: ChangeRequest,
                      state: AppState = Depends(require_admin)) -> JSONResponse:
    """REDUCE_ONLY: exits, closes, TP/SL and flattening only; entries in progress stop."""
    return await _change(state, request, TradingState.REDUCE_ONLY, flatten=False)


@router.post("/resume", responses=_CHANGE_ANSWERS)
async def resume(request: ChangeRequest, state: AppState = Depends(require_admin)) -> JSONResponse:
    """ACTIVE again (a daily-loss latch included)."""
    return await _change(state, request, TradingState.ACTIVE, flatten=False)


async def _change(state: AppState, request: ChangeRequest, to: TradingState, *,
                  flatten: bool) -> JSONResponse:
    scope = ACCOUNT
    if request.strategy is not None:
        async with state.sessionmaker() as session:
            if await risk_queries.strategy_named(session, request.strategy) is None:
                raise HTTPException(404, f"no strategy {request.strategy!r} "
                                         "(`tradewire strategy list` shows them)")
        scope = strategy_scope(request.strategy)
    book = RiskBook(state.sessionmaker)
    reason = request.reason or "no reason given"
    change = await book.set_state(scope, to, actor=request.by, reason=reason, flatten=flatten)
    async with state.sessionmaker() as session:
        event = await session.get(RiskEvent, change.event_id)
    log.warning("risk: %s %s -> %s%s by %s: %s", scope_label(scope), change.before.state.value,
                to.value, " with flatten" if flatten else "", request.by, reason)
    delivered = await deliver(state, await book.to_stop())
    await show_states(state, await book.notices())
    return JSONResponse({
        "state": scope_dict(change.after),
        "before": scope_dict(change.before),
        "event": row_dict(event) if event is not None else None,
        **delivered,
    })


async def show_states(state: AppState, notices: list[Notice]) -> None:
    """Tell every live trade the state that now applies to it (signal `trading_state`: its
    details in the Temporal UI show it at once). Best effort: the account watcher tells each
    trade again within a round, whatever is lost here."""
    # Here, not at the top: GET /risk (the dashboard's overview) reads PostgreSQL only.
    from webhook.temporal import TemporalUnavailable, WorkflowGone, signal

    client = await state.temporal.try_connect()
    gate = asyncio.Semaphore(SIGNALS_AT_ONCE)

    async def one(n: Notice) -> None:
        async with gate:
            try:
                await signal(client, state.settings, n.workflow_id, TradeMessages.TRADING_STATE,
                             TradingStateNotice(state=n.state, scope=n.scope, reason=n.reason))
            except (WorkflowGone, TemporalUnavailable):
                pass  # ended, not started yet, or Temporal away: the watcher tells it

    await asyncio.gather(*(one(n) for n in notices))


async def deliver(state: AppState, stops: list[Stop]) -> dict[str, Any]:
    """Signal `cancel` to every trade in `stops`: how many got it, how many have no running
    workflow (ended meanwhile, or not started yet: its claim refuses the entry), and why the
    rest could not be reached (Temporal unavailable: the watcher delivers them next round)."""
    # Here, not at the top: GET /risk (the dashboard's overview) reads PostgreSQL only.
    from webhook.temporal import TemporalUnavailable, WorkflowGone, signal

    client = await state.temporal.try_connect()
    gate = asyncio.Semaphore(SIGNALS_AT_ONCE)

    async def one(stop: Stop) -> str:
        async with gate:
            try:
                await signal(client, state.settings, stop.workflow_id, TradeMessages.CANCEL,
                             CancelRequest(flatten=stop.flatten, reason=stop.reason))
            except WorkflowGone:
                return "not_running"
            except TemporalUnavailable as exc:
                log.warning("risk: cancel for %s not delivered: %s", stop.workflow_id, exc)
                return "undelivered"
            return "signalled"

    outcomes = await asyncio.gather(*(one(stop) for stop in stops))
    return {"signalled": outcomes.count("signalled"),
            "not_running": outcomes.count("not_running"),
            "undelivered": [s.workflow_id for s, o in zip(stops, outcomes, strict=True)
                            if o == "undelivered"]}
