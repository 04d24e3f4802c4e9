"""The trades API (admin token): list, show (row, orders, fills, live state and exit plan),
cancel, and move a trade's exits (PATCH: update `set_exits`)."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, BeforeValidator, ConfigDict, Field
from sqlalchemy import select
from temporalio.client import (
    Client,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
    WorkflowUpdateStage,
)
from temporalio.exceptions import ApplicationError
from temporalio.service import RPCError, RPCStatusCode

from db.models import Fill, Order, Strategy, Trade
from trading.exits import MAX_TP_LEVELS, SlAfterTp, TakeProfit
from trading.types import StopType, TradeStatus
from webhook.admin import MAX_PAGE, Cursor, Name, RowId, require_admin, row_dict
from webhook.apidoc import CancelSent, TradeDetail, TradePage, answers
from webhook.deps import AppState
from webhook.schemas import (
    AlertTakeProfit,
    Price,
    Target,
    TrailPct,
    TrailPrice,
    _lower,
    _lower_all,
)
from webhook.temporal import (
    CALL_BUDGET_S,
    RPC_TIMEOUT,
    TemporalUnavailable,
    WorkflowGone,
    signal,
)
from workflows.exits_update import ExitsAnswer, TradeNotOpen
from workflows.messages import CancelRequest, ExitsUpdate, TradeMessages
from workflows.state import TradeState

router = APIRouter(prefix="/trades", tags=["trades"])


def trade_view(state: AppState, trade: Trade, strategy_name: str | None) -> dict[str, Any]:
    return row_dict(trade) | {
        "strategy": strategy_name,
        "ui_url": state.settings.workflow_url(trade.workflow_id),
    }


@router.get(
    "",
    responses={200: {"model": TradePage, "description": "newest first"}}
    | answers(401, 413, 422),
)
async def list_trades(
    state: AppState = Depends(require_admin),
    status: TradeStatus | None = None,
    symbol: Name = None,
    strategy: Name = None,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    before: Cursor = None,
) -> JSONResponse:
    stmt = select(Trade, Strategy.name).outerjoin(Strategy, Strategy.id == Trade.strategy_id)
    if status is not None:
        stmt = stmt.where(Trade.status == status.value)
    if symbol:
        stmt = stmt.where(Trade.symbol == symbol.upper())
    if strategy:
        stmt = stmt.where(Strategy.name == strategy)
    if before is not None:
        stmt = stmt.where(Trade.id < before)
    stmt = stmt.order_by(Trade.id.desc()).limit(limit + 1)
    async with state.sessionmaker() as session:
        rows = (await session.execute(stmt)).all()
    page = rows[:limit]
    return JSONResponse(
        {
            "trades": [trade_view(state, trade, name) for trade, name in page],
            "next_before": page[-1][0].id if len(rows) > limit else None,
        }
    )


async def _load(state: AppState, trade_id: int) -> tuple[Trade, str | None]:
    async with state.sessionmaker() as session:
        row = (
            await session.execute(
                select(Trade, Strategy.name)
                .outerjoin(Strategy, Strategy.id == Trade.strategy_id)
                .where(Trade.id == trade_id)
            )
        ).first()
    if row is None:
        raise HTTPException(404, f"no trade #{trade_id}")
    return row[0], row[1]


@router.get(
    "/{trade_id}",
    responses={200: {"model": TradeDetail}} | answers(401, 404, 413, 422),
)
async def show_trade(trade_id: RowId, state: AppState = Depends(require_admin)) -> JSONResponse:
    trade, name = await _load(state, trade_id)
    async with state.sessionmaker() as session:
        orders = (
            (
                await session.execute(
                    select(Order).where(Order.trade_id == trade_id).order_by(Order.id)
                )
            )
            .scalars()
            .all()
        )
        fills = (
            (
                await session.execute(
                    select(Fill)
                    .join(Order, Order.id == Fill.order_id)
                    .where(Order.trade_id == trade_id)
                    .order_by(Fill.id)
                )
            )
            .scalars()
            .all()
        )
    body = trade_view(state, trade, name)
    body["orders"] = [row_dict(o) for o in orders]
    body["fills"] = [row_dict(f) for f in fills]
    body["state"], body["state_error"] = await _live_state(state, trade.workflow_id)
    body["exits"] = await live_exits(state, trade.workflow_id) if body["state"] else None
    return JSONResponse(body)


async def _live_state(state: AppState, workflow_id: str) -> tuple[Any, str | None]:
    client = await state.temporal.try_connect()
    if client is None:
        return None, f"Temporal at {state.settings.temporal_target} is not reachable"
    try:
        result = await asyncio.wait_for(
            client.get_workflow_handle(workflow_id).query(
                TradeMessages.STATE, result_type=TradeState, rpc_timeout=RPC_TIMEOUT
            ),
            CALL_BUDGET_S,
        )
    except Exception as exc:  # noqa: BLE001 - a failed query is shown beside the row, not fatal
        return None, f"state query failed: {type(exc).__name__}: {exc}"
    return result.model_dump(mode="json"), None


async def live_exits(state: AppState, workflow_id: str) -> Any:
    """The trade's exit plan, its live view and TP/SL (query `exits`); None when it cannot be
    read (the state query's error says why)."""
    client = await state.temporal.try_connect()
    if client is None:
        return None
    try:
        result = await asyncio.wait_for(
            client.get_workflow_handle(workflow_id).query(
                TradeMessages.EXITS, result_type=ExitsAnswer, rpc_timeout=RPC_TIMEOUT
            ),
            CALL_BUDGET_S,
        )
    except Exception:  # noqa: BLE001 - a trade started before the query existed has none
        return None
    return result.model_dump(mode="json")


@router.post(
    "/{trade_id}/cancel",
    status_code=202,
    responses={202: {"model": CancelSent, "description": "the cancel signal is sent"}}
    | answers(
        400, 401, 404, 409, 413, 422, 503,
        e409="the trade has ended, or its workflow is not running",
        e503="Temporal is unavailable: the cancel was not sent",
    ),
)
async def cancel_trade(
    trade_id: RowId,
    request: CancelRequest | None = None,
    state: AppState = Depends(require_admin),
) -> JSONResponse:
    """Stop the entry and cancel working orders; `flatten` also closes what filled."""
    request = request or CancelRequest()
    trade, _ = await _load(state, trade_id)
    if TradeStatus(trade.status).is_final:
        raise HTTPException(409, f"trade #{trade_id} has already ended ({trade.status})")
    client = await state.temporal.try_connect()
    try:
        await signal(client, state.settings, trade.workflow_id, TradeMessages.CANCEL, request)
    except WorkflowGone:
        raise HTTPException(
            409, f"trade #{trade_id}'s workflow {trade.workflow_id} is not running"
        ) from None
    except TemporalUnavailable as exc:
        raise HTTPException(503, f"cancel not sent: {exc}") from None
    return JSONResponse(
        {
            "trade_id": trade_id,
            "workflow_id": trade.workflow_id,
            "flatten": request.flatten,
            "ui_url": state.settings.workflow_url(trade.workflow_id),
            "sent": "cancel",
        },
        status_code=202,
    )


# --- moving a trade's exits ---------------------------------------------------------------------

# The trade takes (or refuses) the update in its next workflow task; then it moves its orders
# at the exchange, which may take several requests. Past the first budget the trade has not
# answered (its worker is down or far behind) and Temporal holds the update for it; past the
# second the trade goes on moving its orders. Either is a 202 that says which.
ACCEPT_BUDGET_S = 5.0
APPLY_BUDGET_S = 30.0
_TRAIL_PRICES = {TrailPrice.MARK: StopType.MARK_PRICE, TrailPrice.LAST: StopType.LAST_PRICE}
# What JSON null takes out of the trade (PATCH semantics); other fields are moved, not removed.
_NULL_REMOVES = {"tps": "tps", "trail_pct": "trail"}


class ExitsPatch(BaseModel):
    """A trade's exits moved, with the fields and checks of an alert (webhook/schemas.py); a
    field left out keeps what the trade has; `"tps": null` goes back to one TP (or none),
    `"trail_pct": null` removes the trailing stop."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    sl: Price | None = None
    tp: Price | None = None
    tps: list[AlertTakeProfit] | None = Field(default=None, min_length=1,
                                              max_length=MAX_TP_LEVELS)
    sl_after_tp: Annotated[SlAfterTp | list[SlAfterTp] | None, BeforeValidator(_lower_all)] = None
    trail_pct: TrailPct | None = None
    trail_activation_pct: Target | None = None
    trail_activation_price: Price | None = None
    trail_price: Annotated[TrailPrice | None, BeforeValidator(_lower)] = None

    def update(self) -> ExitsUpdate:
        for name in ("sl", "tp"):
            if name in self.model_fields_set and getattr(self, name) is None:
                raise HTTPException(422, f"{name} can be moved, not removed: give a price")
        after = self.sl_after_tp
        return ExitsUpdate(
            sl=self.sl, tp=self.tp,
            tps=None if self.tps is None else tuple(
                TakeProfit(price=t.price, pct=t.pct, qty_pct=t.qty_pct) for t in self.tps),
            sl_after_tp=tuple(after) if isinstance(after, list) else after,
            trail_pct=self.trail_pct, trail_activation_pct=self.trail_activation_pct,
            trail_activation_price=self.trail_activation_price,
            trail_price=None if self.trail_price is None else _TRAIL_PRICES[self.trail_price],
            remove=tuple(removed for name, removed in _NULL_REMOVES.items()
                         if name in self.model_fields_set and getattr(self, name) is None),
        )


class ExitsMoved(BaseModel):
    """The trade's exits after the update (`applied`), or (202, `applied` false) the update
    still under way, `note` saying where: GET /trades/{id} shows when it is done."""

    trade_id: int
    workflow_id: str
    applied: bool
    note: str | None = None
    plan: dict[str, Any] | None
    exits: dict[str, Any] | None
    protection: dict[str, Any] | None
    ui_url: str


@router.patch(
    "/{trade_id}",
    responses={
        200: {"model": ExitsMoved, "description": "the exits are moved"},
        202: {"model": ExitsMoved, "description": "sent, not done yet: the trade has not answered "
              "(Temporal holds the move for it), or it is still moving its orders"},
    }
    | answers(
        400, 401, 404, 409, 413, 422, 503,
        e409="the trade is closing or has ended, or its workflow is not running",
        e422="a field out of range or unknown, or the trade refused the move (a price on the "
        "wrong side of the current price, shares over 100 %, the exchange refused it): the "
        "trade's exits are as they were",
        e503="Temporal is unavailable: the move was not sent",
    ),
)
async def set_exits(
    trade_id: RowId,
    patch: ExitsPatch,
    state: AppState = Depends(require_admin),
) -> JSONResponse:
    """Move a trade's stop-loss, take-profit ladder and trailing stop (update `set_exits`)."""
    upd = patch.update()
    if not patch.model_fields_set:
        raise HTTPException(422, "give at least one of " + ", ".join(ExitsPatch.model_fields))
    trade, _ = await _load(state, trade_id)
    if TradeStatus(trade.status).is_final:
        raise HTTPException(409, f"trade #{trade_id} has already ended ({trade.status})")
    client = await state.temporal.try_connect()
    if client is None:
        raise HTTPException(
            503, f"not sent: cannot connect to Temporal at {state.settings.temporal_target}")
    answer, note = await _send_exits(client, trade_id, trade.workflow_id, upd)
    applied = answer is not None
    body = ExitsMoved(
        trade_id=trade_id, workflow_id=trade.workflow_id, applied=applied, note=note,
        plan=answer.model_dump(mode="json")["plan"] if answer else None,
        exits=answer.model_dump(mode="json")["exits"] if answer else None,
        protection=answer.model_dump(mode="json")["protection"] if answer else None,
        ui_url=state.settings.workflow_url(trade.workflow_id),
    )
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if applied else 202)


async def _send_exits(
    client: Client, trade_id: int, workflow_id: str, upd: ExitsUpdate
) -> tuple[ExitsAnswer | None, str | None]:
    """Send the update: the trade's answer once applied, else (None, where it stands). A
    refusal is an HTTPException."""
    handle = client.get_workflow_handle(workflow_id)
    try:
        started = await asyncio.wait_for(
            handle.start_update(
                TradeMessages.SET_EXITS, upd, wait_for_stage=WorkflowUpdateStage.ACCEPTED,
                result_type=ExitsAnswer, rpc_timeout=timedelta(seconds=ACCEPT_BUDGET_S),
            ),
            ACCEPT_BUDGET_S + 1,
        )
    except WorkflowUpdateFailedError as exc:  # the validator refused it: nothing accepted
        raise _refusal(trade_id, exc) from None
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError):
        return None, (f"the trade has not answered within {ACCEPT_BUDGET_S:g} s (is the "
                      "worker running?): Temporal holds the move for it, and the trade checks "
                      f"it when it runs (it may refuse it); GET /trades/{trade_id} shows it")
    except RPCError as exc:
        if exc.status is RPCStatusCode.NOT_FOUND:
            raise HTTPException(
                409, f"trade #{trade_id}'s workflow {workflow_id} is not running") from None
        raise HTTPException(503, f"not sent: {type(exc).__name__}: {exc}") from None
    try:
        answer = await asyncio.wait_for(
            started.result(rpc_timeout=timedelta(seconds=APPLY_BUDGET_S)), APPLY_BUDGET_S + 1)
    except WorkflowUpdateFailedError as exc:  # the exchange refused: the trade rolled back
        raise _refusal(trade_id, exc) from None
    except (WorkflowUpdateRPCTimeoutOrCancelledError, TimeoutError, RPCError):
        return None, (f"the trade took the move and is still placing its orders after "
                      f"{APPLY_BUDGET_S:g} s; GET /trades/{trade_id} shows when it is done")
    return answer, None


def _refusal(trade_id: int, exc: WorkflowUpdateFailedError) -> HTTPException:
    cause = exc.cause
    message = cause.message if isinstance(cause, ApplicationError) else str(cause or exc)
    if isinstance(cause, ApplicationError) and cause.type == TradeNotOpen.__name__:
        return HTTPException(409, f"trade #{trade_id}: {message}")
    return HTTPException(422, f"trade #{trade_id} refused the move: {message}")
