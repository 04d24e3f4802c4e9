"""The trades API (admin token): list, show (row, orders, fills, live state), cancel."""

from __future__ import annotations

import asyncio
from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Security
from fastapi.responses import JSONResponse
from sqlalchemy import inspect, select

from db.models import Fill, Order, Strategy, Trade
from trading.types import TradeStatus
from webhook.apidoc import ADMIN_TOKEN, CancelSent, TradeDetail, TradePage, answers
from webhook.deps import AppState, app_state, has_admin_token
from webhook.frontdoor import ADMIN_REQUIRED
from webhook.temporal import (
    CALL_BUDGET_S,
    RPC_TIMEOUT,
    TemporalUnavailable,
    WorkflowGone,
    signal,
    ui_url,
)
from workflows.messages import CancelRequest, TradeMessages
from workflows.state import TradeState

router = APIRouter(prefix="/trades", tags=["trades"])
MAX_PAGE = 200
# Ids are PostgreSQL bigints: a larger one answers 422 instead of an overflow (500) in the query.
MAX_ID = 2**63 - 1
NO_NUL = r"^[^\x00]*$"  # PostgreSQL text cannot hold NUL: refused as 422, not a 500
MAX_NAME = 64
RowId = Annotated[int, Path(ge=1, le=MAX_ID, description="a row id (1 to 2^63-1)")]
Cursor = Annotated[
    int | None,
    Query(ge=1, le=MAX_ID, description="page cursor: the `next_before` of the last page"),
]
Name = Annotated[str | None, Query(max_length=MAX_NAME, pattern=NO_NUL)]


def require_admin(
    request: Request,
    state: AppState = Depends(app_state),
    _documented: object = Security(ADMIN_TOKEN),  # names the scheme in the OpenAPI document
) -> AppState:
    if not has_admin_token(request, state.settings):
        raise HTTPException(401, ADMIN_REQUIRED, headers={"WWW-Authenticate": "Bearer"})
    return state


def jsonable(value: Any) -> Any:
    """Money as exact text (never a float), times as ISO 8601."""
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def row_dict(row: Any) -> dict[str, Any]:
    return {c.key: jsonable(getattr(row, c.key)) for c in inspect(row).mapper.column_attrs}


def trade_view(state: AppState, trade: Trade, strategy_name: str | None) -> dict[str, Any]:
    return row_dict(trade) | {
        "strategy": strategy_name,
        "ui_url": ui_url(state.settings, trade.workflow_id),
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
            "ui_url": ui_url(state.settings, trade.workflow_id),
            "sent": "cancel",
        },
        status_code=202,
    )
