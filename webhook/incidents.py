"""The incidents API (admin token): list, show, dismiss, adopt, flatten, resume. The account watcher
raises and resolves incidents (docs/design.md#the-ownership-invariant); the account's policy
(webhook/responder.py) or an operator answers them (docs/design.md#incident-policies)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Incident
from trading.types import IncidentAction, IncidentStatus
from webhook import adoption, resume
from webhook.admin import MAX_PAGE, Cursor, Name, RowId, require_admin, row_dict
from webhook.adoption import AdoptionRefused
from webhook.apidoc import IncidentAnswered, IncidentPage, IncidentRow, answers
from webhook.deps import AppState
from webhook.temporal import TemporalUnavailable

router = APIRouter(prefix="/incidents", tags=["incidents"])
OPERATOR = "operator"


class DismissRequest(BaseModel):
    """Why the incident needs nothing more (kept on it), and who says so."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2000)]
    by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = (
        OPERATOR
    )


async def open_incidents(
    sessionmaker: async_sessionmaker[AsyncSession], *, first: int = 10
) -> tuple[int, list[Incident]]:
    """How many incidents are open, and the oldest `first` of them (what /healthz shows)."""
    async with sessionmaker() as session:
        count = await session.scalar(_count_open())
        rows = await session.scalars(
            select(Incident).where(Incident.status == IncidentStatus.OPEN.value)
            .order_by(Incident.id).limit(first)
        )
        return count or 0, list(rows.all())


def _count_open() -> Select[tuple[int]]:
    return select(func.count()).select_from(Incident).where(
        Incident.status == IncidentStatus.OPEN.value)


@router.get(
    "",
    responses={200: {"model": IncidentPage, "description": "newest first; `open`: how many"}}
    | answers(401, 413, 422),
)
async def list_incidents(
    state: AppState = Depends(require_admin),
    status: Literal["open", "resolved", "dismissed", "all"] = "open",
    symbol: Name = None,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    before: Cursor = None,
) -> JSONResponse:
    stmt = select(Incident)
    if status != "all":
        stmt = stmt.where(Incident.status == status)
    if symbol:
        stmt = stmt.where(Incident.symbol == symbol.upper())
    if before is not None:
        stmt = stmt.where(Incident.id < before)
    stmt = stmt.order_by(Incident.id.desc()).limit(limit + 1)
    async with state.sessionmaker() as session:
        open_count = await session.scalar(_count_open())
        rows = list((await session.scalars(stmt)).all())
    page = rows[:limit]
    return JSONResponse({
        "incidents": [row_dict(row) for row in page],
        "next_before": page[-1].id if len(rows) > limit else None,
        "open": open_count,
    })


class AdoptRequest(BaseModel):
    """Take an unowned-quantity incident's quantity into a trade that protects and tracks it
    (adopt) or closes it at once (flatten)."""

    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = (
        OPERATOR
    )
    # adopt only: the strategy whose exit alerts may close it, and its stop's distance.
    strategy: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    stop_pct: Annotated[Decimal, Field(gt=0, lt=100)] | None = None


@router.get(
    "/{incident_id}",
    responses={200: {"model": IncidentRow}} | answers(401, 404, 413, 422),
)
async def show_incident(incident_id: RowId, state: AppState = Depends(require_admin)) -> JSONResponse:
    async with state.sessionmaker() as session:
        row = await session.get(Incident, incident_id)
    if row is None:
        raise HTTPException(404, f"no incident #{incident_id}")
    return JSONResponse(row_dict(row))


@router.post(
    "/{incident_id}/dismiss",
    responses={200: {"model": IncidentRow, "description": "dismissed"}}
    | answers(400, 401, 404, 409, 413, 422, e409="the incident is not open"),
)
async def dismiss_incident(
    incident_id: RowId, request: DismissRequest, state: AppState = Depends(require_admin)
) -> JSONResponse:
    """Mark an open incident as answered by a person. While its mismatch lasts with the same
    gap the watcher does not raise it again; a different gap is a new incident."""
    now = datetime.now(UTC)
    async with state.sessionmaker() as session, session.begin():
        row = await session.get(Incident, incident_id, with_for_update=True)
        if row is None:
            raise HTTPException(404, f"no incident #{incident_id}")
        if row.status != IncidentStatus.OPEN:
            raise HTTPException(
                409, f"incident #{incident_id} is {row.status}, not open: nothing to dismiss"
            )
        row.status = IncidentStatus.DISMISSED.value
        row.resolution = f"dismissed by {request.by}: {request.note}"
        row.actions = [*row.actions, {"at": now.isoformat(), "by": request.by,
                                      "action": IncidentAction.DISMISS.value,
                                      "note": request.note}]
    return JSONResponse(row_dict(row))


@router.post(
    "/{incident_id}/adopt",
    status_code=202,
    responses={202: {"model": IncidentAnswered, "description": "the trade that answers it"}}
    | answers(
        400, 401, 404, 409, 413, 422, 503,
        e404="no such incident or strategy",
        e409="the incident is not open unowned quantity, is already being answered, or its pair is unknown",
        e503="Temporal is unavailable: recorded, started once it is back",
    ),
)
async def adopt_incident(
    incident_id: RowId, request: AdoptRequest, state: AppState = Depends(require_admin)
) -> JSONResponse:
    """Adopt an open unowned-quantity incident: a trade takes the quantity on, places a stop
    `stop_pct` from the mark (default TRADEWIRE_ADOPT_STOP_PCT) and tracks it until an exit
    alert of `strategy` (if given), `tradewire trades close` or the stop closes it."""
    return await _answer(state, incident_id, request, close=False)


@router.post(
    "/{incident_id}/flatten",
    status_code=202,
    responses={202: {"model": IncidentAnswered, "description": "the trade that answers it"}}
    | answers(
        400, 401, 404, 409, 413, 422, 503,
        e404="no such incident",
        e409="the incident is not open unowned quantity, is already being answered, or its pair is unknown",
        e503="Temporal is unavailable: recorded, started once it is back",
    ),
)
async def flatten_incident(
    incident_id: RowId, request: AdoptRequest, state: AppState = Depends(require_admin)
) -> JSONResponse:
    """Flatten an open unowned-quantity incident: a trade takes the quantity on and closes it
    reduce-only at once (protected by a stop until it has)."""
    if request.strategy is not None:
        raise HTTPException(422, "flatten closes the quantity at once: give no strategy")
    return await _answer(state, incident_id, request, close=True)


async def _answer(state: AppState, incident_id: int, request: AdoptRequest, *,
                  close: bool) -> JSONResponse:
    try:
        attempt = await adoption.adopt(
            state, incident_id, by=request.by, close=close, stop_pct=request.stop_pct,
            strategy=request.strategy, note=request.note,
        )
    except AdoptionRefused as exc:
        raise HTTPException(exc.status, exc.message) from None
    except TemporalUnavailable as exc:
        # The trade row and the action are written: the responder starts it once Temporal is back.
        raise HTTPException(503, f"recorded, not started yet ({exc}); it starts once Temporal "
                                 "is back") from None
    return await _started(state, incident_id, attempt.trade_id, attempt.workflow_id)


async def _started(state: AppState, incident_id: int, trade_id: int,
                   workflow_id: str) -> JSONResponse:
    """202: the incident as it is now, and the trade that answers it."""
    async with state.sessionmaker() as session:
        row = await session.get(Incident, incident_id)
    return JSONResponse(
        {"incident": row_dict(row), "trade_id": trade_id, "workflow_id": workflow_id,
         "ui_url": state.settings.workflow_url(workflow_id)},
        status_code=202,
    )


class ResumeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)] | None = None
    by: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)] = (
        OPERATOR
    )


@router.post(
    "/{incident_id}/resume",
    status_code=202,
    responses={202: {"model": IncidentAnswered, "description": "the trade that answers it"}}
    | answers(
        400, 401, 404, 409, 413, 422, 503,
        e404="no such incident",
        e409="the incident is not an open untracked trade, or its trade cannot be resumed",
        e503="Temporal is unavailable: recorded, not started",
    ),
)
async def resume_incident(
    incident_id: RowId, request: ResumeRequest, state: AppState = Depends(require_admin)
) -> JSONResponse:
    """Resume an untracked trade: a new run of its workflow rebuilds its books from its rows,
    keeps its TP/SL and tracks it (docs/design.md#resuming-a-trade)."""
    try:
        r = await resume.resume(state, incident_id, by=request.by, note=request.note)
    except AdoptionRefused as exc:
        raise HTTPException(exc.status, exc.message) from None
    except TemporalUnavailable as exc:
        raise HTTPException(503, f"recorded, not started ({exc}); try again once Temporal is "
                                 "back") from None
    return await _started(state, incident_id, r.trade_id, r.workflow_id)
