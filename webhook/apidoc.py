"""What the OpenAPI document (`/openapi.json`, served with TRADEWIRE_DOCS_ENABLED=true) says the
routes answer: the admin token's security scheme, every status code each route really answers,
and the shape of each answer's body.

Documentation only. The routes build their answers themselves (`JSONResponse`), so nothing
here changes what is sent; the models below are never used to serialize an answer.
tests/webhook/test_openapi_fuzz.py sends schemathesis' requests to every route and checks that
each answer is one the document lists, with the body it describes (review D15 found the
document unresolvable and most status codes missing).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi.security import HTTPBearer
from pydantic import BaseModel, ConfigDict

# Parses the header for the document only (auto_error off): the token itself is checked by
# webhook/frontdoor.py before any body is read, and again by `require_admin`.
ADMIN_TOKEN = HTTPBearer(
    scheme_name="adminToken",
    description="the admin token (TRADEWIRE_ADMIN_TOKEN, or the admin-token file in the state "
    "dir) as `Authorization: Bearer <token>`",
    auto_error=False,
)
# /healthz answers without the token too (up or down only): the token is optional there.
OPTIONAL_ADMIN_TOKEN: dict[str, Any] = {"security": [{}, {ADMIN_TOKEN.scheme_name: []}]}


class Open(BaseModel):
    """A body that may carry more fields than the ones named (rows grow columns)."""

    model_config = ConfigDict(extra="allow")


class Problem(BaseModel):
    """An error with one sentence saying what is wrong."""

    detail: str


class FieldError(Open):
    """One field FastAPI's validation refused (its `type`, where, and why)."""

    type: str
    loc: list[str | int]
    msg: str


class Invalid(BaseModel):
    """422: the fields FastAPI's validation refused, or one sentence (a route's own check)."""

    detail: list[FieldError] | str


# --- the alert route ----------------------------------------------------------------------------

# trading.types.SignalOutcome's values, and NOT_RECORDED: the database could not record it (503).
AlertOutcome = Literal[
    "ACCEPTED", "DUPLICATE", "REFUSED", "NOT_STARTED", "NOTHING_TO_CLOSE", "NOT_RECORDED"
]


class ClosingTrade(BaseModel):
    trade_id: int
    workflow_id: str
    ui_url: str


class AlertAnswer(BaseModel):
    """What became of one alert. Refusals before authentication carry no `signal_id`."""

    outcome: AlertOutcome
    reason: str | None = None
    signal_id: int | None = None
    trade_id: int | None = None
    workflow_id: str | None = None
    ui_url: str | None = None
    intent: str | None = None
    symbol: str | None = None
    duplicate_of: int | None = None
    closing: list[ClosingTrade] | None = None
    # "queued": accepted in a burst from the durable record, its workflow started right behind
    # the answer (the signal is QUEUED until Temporal takes the start: README "Answers").
    start: Literal["queued"] | None = None


# --- /healthz -----------------------------------------------------------------------------------


class UpOrDown(BaseModel):
    """An anonymous caller's answer."""

    model_config = ConfigDict(extra="forbid")

    status: Literal["up", "down"]


class CheckDetail(BaseModel):
    detail: Any
    ms: float  # float-ok: milliseconds, for display


class HealthReport(BaseModel):
    """The admin's answer: each component, the open incidents, the trading states and each
    check's detail."""

    status: Literal["ok", "degraded", "fail"]
    database: Literal["ok", "fail"]
    temporal: Literal["ok", "fail"]
    exchange: Literal["ok", "fail"]
    incidents: int | None
    # scope → trading state (the account's always; null: the database could not say)
    risk: dict[str, str] | None = None
    details: dict[str, CheckDetail]
    checked_s_ago: float  # float-ok: seconds, for display


HEALTH = UpOrDown | HealthReport


# --- trades and incidents -----------------------------------------------------------------------


class TradeRow(Open):
    """A `trade` row (money as exact decimal strings), its strategy's name and Temporal UI link."""

    id: int
    workflow_id: str
    symbol: str
    side: str
    status: str
    strategy: str | None
    ui_url: str


class TradePage(BaseModel):
    trades: list[TradeRow]
    next_before: int | None


class TradeDetail(TradeRow):
    """The row, its orders and fills, and the workflow's live state (or why it is missing)."""

    orders: list[dict[str, Any]]
    fills: list[dict[str, Any]]
    state: dict[str, Any] | None
    state_error: str | None


class CancelSent(BaseModel):
    trade_id: int
    workflow_id: str
    flatten: bool
    ui_url: str
    sent: Literal["cancel"]


class IncidentRow(Open):
    """An `incident` row."""

    id: int
    kind: str
    status: str
    symbol: str


class IncidentPage(BaseModel):
    incidents: list[IncidentRow]
    next_before: int | None
    open: int


class IncidentAnswered(BaseModel):
    """The incident as it is now, and the trade started to answer it."""

    incident: IncidentRow
    trade_id: int
    workflow_id: str
    ui_url: str


# --- status codes -------------------------------------------------------------------------------

_ERRORS: dict[int, dict[str, Any]] = {
    400: {"model": Problem, "description": "the body is not parseable JSON"},
    401: {
        "model": Problem,
        "description": "no admin token, or a wrong one (checked before the body is read)",
        "headers": {"WWW-Authenticate": {"schema": {"type": "string"}}},
    },
    404: {"model": Problem, "description": "no such row"},
    409: {"model": Problem, "description": "the row's state does not allow it now"},
    413: {
        "model": Problem,
        "description": "body larger than TRADEWIRE_ADMIN_BODY_MAX_BYTES (never read further)",
    },
    422: {
        "model": Invalid,
        "description": "a parameter or field out of range, of the wrong type, or unknown",
    },
    503: {"model": Problem, "description": "Temporal is unavailable"},
}


def answers(*codes: int, **described: str) -> dict[int | str, dict[str, Any]]:
    """The error answers `codes` of an admin route, with the shared body schema of each;
    `described` (e.g. `e409="…"`) says in the route's own words when one happens."""
    out: dict[int | str, dict[str, Any]] = {}
    for code in codes:
        doc = dict(_ERRORS[code])
        if f"e{code}" in described:
            doc["description"] = described[f"e{code}"]
        out[code] = doc
    return out


# --- risk ---------------------------------------------------------------------------------------


class ScopeStateRow(BaseModel):
    """One scope's trading state and who set it, when and why (none: never changed)."""

    scope: str
    label: str
    state: Literal["ACTIVE", "REDUCE_ONLY", "HALTED"]
    latched: bool
    flatten: bool
    reason: str | None
    changed_by: str | None
    changed_at: str | None


class EffectiveState(BaseModel):
    state: Literal["ACTIVE", "REDUCE_ONLY", "HALTED"]
    scope: str


class ScopePnl(BaseModel):
    """A scope's PnL today. `source` "latch": the daily loss latch's figure (realized with
    fees plus unrealized at mark; `at`: when it last changed), kept for the scopes with a
    daily loss limit; "realized": the fills' realized PnL with fees only (`unrealized` and
    `at` null), where the latch keeps none. `loss_limit_usdt`: the loss that latches the
    scope (the tighter of `daily_loss_usdt` and `daily_loss_pct` of the day's starting
    equity), null without a limit."""

    source: Literal["latch", "realized"]
    pnl: str
    realized: str
    unrealized: str | None
    at: str | None
    loss_limit_usdt: str | None


class StrategyRisk(BaseModel):
    """A strategy's own state, the one its trades obey (the stricter of its and the
    account's), its limits (null: none) and today's PnL (`today_pnl`: `today.pnl`)."""

    name: str
    enabled: bool
    state: Literal["ACTIVE", "REDUCE_ONLY", "HALTED"]
    effective: EffectiveState
    limits: dict[str, Any]
    today_pnl: str
    today: ScopePnl


class RiskDayPnl(BaseModel):
    """Today's realized PnL of every fill since the day started (gross, fees, net), the
    day's starting equity once the latch has read it, and the account's PnL today."""

    day: str
    timezone: str
    since: str
    realized_pnl: str
    fees: str
    net_pnl: str
    start_equity: str | None
    account: ScopePnl


class SymbolExposure(BaseModel):
    """What the open trades own on one symbol and side, at their average entry price."""

    symbol: str
    side: str
    qty: str
    notional_usdt: str
    trades: int


class RiskView(BaseModel):
    account: ScopeStateRow
    scopes: list[ScopeStateRow]
    strategies: list[StrategyRisk]
    limits: dict[str, Any]
    today: RiskDayPnl
    exposure: list[SymbolExposure]
    events: list[dict[str, Any]]


class RiskChanged(BaseModel):
    """The scope's state after and before the change, the change's record, and what the
    change reached: trades signalled `cancel`, trades with no running workflow, and trades
    Temporal could not be asked to stop now (the account watcher asks again every round)."""

    state: ScopeStateRow
    before: ScopeStateRow
    event: dict[str, Any] | None
    signalled: int
    not_running: int
    undelivered: list[str]
