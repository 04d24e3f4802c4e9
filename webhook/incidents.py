"""The incidents API (admin token): list, show, dismiss. The account watcher raises and resolves
incidents (docs/design.md#the-ownership-invariant); an operator answers them here."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, HTTPException, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, StringConstraints
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from db.models import Incident
from trading.types import IncidentAction, IncidentStatus
from webhook.deps import AppState
from webhook.trades import MAX_PAGE, require_admin, row_dict

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


@router.get("")
async def list_incidents(
    state: AppState = Depends(require_admin),
    status: Literal["open", "resolved", "dismissed", "all"] = "open",
    symbol: str | None = None,
    limit: int = Query(50, ge=1, le=MAX_PAGE),
    before: int | None = Query(None, description="page cursor: the `next_before` of the last page"),
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


@router.get("/{incident_id}")
async def show_incident(incident_id: int, state: AppState = Depends(require_admin)) -> JSONResponse:
    async with state.sessionmaker() as session:
        row = await session.get(Incident, incident_id)
    if row is None:
        raise HTTPException(404, f"no incident #{incident_id}")
    return JSONResponse(row_dict(row))


@router.post("/{incident_id}/dismiss")
async def dismiss_incident(
    incident_id: int, request: DismissRequest, state: AppState = Depends(require_admin)
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
