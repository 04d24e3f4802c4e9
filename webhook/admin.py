"""What every admin route shares: the admin-token check, the path and query types that keep a
bad id or name a 422 (never a database error), and rows as JSON (money as exact text).

Its own module so that a reader of the book (the dashboard's pages, GET /risk) needs neither
Temporal nor the trades API's update machinery to use them."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Path, Query, Request, Security
from sqlalchemy import inspect

from webhook.apidoc import ADMIN_TOKEN
from webhook.deps import AppState, app_state, has_admin_token
from webhook.frontdoor import ADMIN_REQUIRED

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


