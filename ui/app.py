"""The dashboard's FastAPI app: server-side pages (Jinja2), a few forms, one event stream.

Pages: overview, trades (and one trade's timeline), strategies (PnL curve, win rate, fees,
execution quality), alerts, incidents. Every page but sign-in needs the session cookie
(ui/session.py); every form carries the session's CSRF token."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from starlette.responses import StreamingResponse

from settings import Settings
from trading.types import IncidentStatus, SignalOutcome, TradeStatus
from ui import actions, queries
from ui.format import FILTERS
from ui.live import LIVE_INTERVAL_S, MAX_STREAM_S, Snapshot
from ui.session import (
    COOKIE,
    SESSION_S,
    CsrfRefused,
    NotSignedIn,
    Session,
    check_csrf,
    check_origin,
    new_cookie,
    read_cookie,
    token_matches,
)
from webhook.deps import AppState, TemporalHandle

log = logging.getLogger("ui")
HERE = Path(__file__).parent
FLASH = "tw_flash"
# No inline script may run: the pages' data reach their scripts as JSON blocks. Styles allow
# inline ones because the charting library sizes its canvases with style attributes.
MAX_FORM_BYTES = 16 * 1024  # the largest form is a note of 2000 characters
CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
       "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; form-action 'self'; "
       "base-uri 'none'; object-src 'none'")


def create_ui_app(settings: Settings, database_url: str | None = None) -> FastAPI:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    templates.env.filters.update(FILTERS)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from db.session import make_engine, make_sessionmaker

        url = database_url or settings.database_url
        if not url:
            raise RuntimeError(
                "no database: set TRADEWIRE_DATABASE_URL (tradewire up sets it for its children)")
        if not settings.resolve_admin_token():
            raise RuntimeError("no admin token: set TRADEWIRE_ADMIN_TOKEN (or run `tradewire up`"
                               " once, which generates one): it is the dashboard's sign-in")
        engine = make_engine(url)
        # Connected on first need (a trade's live exits, an operator's action), not here: a
        # dashboard nobody opens holds no Temporal client, whose runtime and connection are
        # 8 MiB of its resident memory (bench/memory.py).
        temporal = TemporalHandle(settings.temporal_target, settings.temporal_namespace)
        app.state.tw = AppState(settings=settings, engine=engine,
                                sessionmaker=make_sessionmaker(engine), temporal=temporal)
        try:
            yield
        finally:
            await engine.dispose()

    app = FastAPI(title="Tradewire dashboard", lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")
    app.add_middleware(SecurityHeaders)

    def token() -> str:
        value = settings.resolve_admin_token()
        if not value:
            raise NotSignedIn
        return value

    def signed_in(request: Request) -> Session:
        return read_cookie(request.cookies.get(COOKIE), settings.resolve_admin_token())

    def form_guard(request: Request, csrf: str | None) -> Session:
        """A POST from this dashboard's own page of a signed-in browser, or an exception."""
        session = signed_in(request)
        check_origin(request.headers.get("origin"), request.headers.get("host"))
        check_csrf(session, token(), csrf)
        return session

    def page(request: Request, name: str, session: Session, **context: Any) -> HTMLResponse:
        flash = request.cookies.get(FLASH)
        body: dict[str, Any] = {
            "csrf": session.csrf(token()), "path": request.url.path,
            "flash": _read_flash(flash),
            "temporal_ui": settings.temporal_ui_base, **context,
        }
        response = templates.TemplateResponse(request, name, body)
        if flash:
            response.delete_cookie(FLASH, path="/")
        return response

    def back(request: Request, to: str, done: actions.Done) -> RedirectResponse:
        """Post/redirect/get, with the outcome shown once on the next page."""
        response = RedirectResponse(to, status_code=303)
        response.set_cookie(FLASH, _flash_value(done),
                            max_age=60, httponly=True, samesite="strict", path="/",
                            secure=request.url.scheme == "https")
        return response

    @app.exception_handler(NotSignedIn)
    async def not_signed_in(request: Request, exc: NotSignedIn) -> Response:
        if request.url.path == "/events" or request.method != "GET":
            return JSONResponse({"detail": "sign in first"}, status_code=401)
        return RedirectResponse(f"/login?next={quote(request.url.path)}", status_code=303)

    @app.exception_handler(FormTooLarge)
    async def too_large(request: Request, exc: FormTooLarge) -> Response:
        return JSONResponse({"detail": f"a form is at most {MAX_FORM_BYTES} bytes"},
                            status_code=413)

    @app.exception_handler(CsrfRefused)
    async def csrf_refused(request: Request, exc: CsrfRefused) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=403)

    # --- sign-in -------------------------------------------------------------------------------

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        return JSONResponse({"status": "up"})

    @app.get("/login", response_class=HTMLResponse)
    async def login_page(request: Request, next: str = "/") -> HTMLResponse:
        return templates.TemplateResponse(request, "login.html", {"next": _local(next),
                                                                   "error": None})

    @app.post("/login", response_model=None)
    async def login(request: Request) -> Response:
        fields = await form(request)
        token_, next = fields.get("token", ""), fields.get("next", "/")
        check_origin(request.headers.get("origin"), request.headers.get("host"))
        admin = settings.resolve_admin_token()
        if not token_matches(token_, admin):
            log.warning("ui: a sign-in with a wrong token from %s",
                        request.client.host if request.client else "?")
            return templates.TemplateResponse(
                request, "login.html", {"next": _local(next), "error": "That is not the admin "
                                        "token (TRADEWIRE_ADMIN_TOKEN or .tradewire/admin-token)."},
                status_code=401)
        assert admin is not None
        response = RedirectResponse(_local(next), status_code=303)
        response.set_cookie(COOKIE, new_cookie(admin), max_age=SESSION_S, httponly=True,
                            samesite="strict", path="/", secure=request.url.scheme == "https")
        return response

    @app.post("/logout")
    async def logout(request: Request) -> RedirectResponse:
        form_guard(request, (await form(request)).get("csrf"))
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE, path="/")
        return response

    # --- pages ---------------------------------------------------------------------------------

    @app.get("/", response_class=HTMLResponse)
    async def overview(request: Request) -> HTMLResponse:
        session = signed_in(request)
        state: AppState = app.state.tw
        snap = await Snapshot.read(state)
        return page(request, "overview.html", session, snap=snap, live=snap.fragments(templates))

    @app.get("/trades", response_class=HTMLResponse)
    async def trades_page(request: Request, strategy: str = "", symbol: str = "",
                          status: str = "", since: str = "", until: str = "",
                          before: str = "") -> HTMLResponse:
        session = signed_in(request)
        state: AppState = app.state.tw
        problems: list[str] = []
        f = queries.TradeFilter(
            strategy=strategy.strip() or None, symbol=symbol.strip() or None,
            status=_status(status, problems), since=_day(since, "from", problems),
            until=_day(until, "to", problems),
            before=int(before) if before.isdigit() and 0 < int(before) < 2**63 else None)
        async with state.sessionmaker() as s:
            rows = await queries.trades(s, f, limit=queries.PAGE + 1)
            names = await queries.strategy_names(s)
            symbols = await queries.symbols_traded(s)
        older = None
        if len(rows) > queries.PAGE:  # one more than a page: there is an older page
            rows = rows[:queries.PAGE]
            query = {k: v for k, v in request.query_params.items() if k != "before"}
            older = "/trades?" + urlencode({**query, "before": rows[-1][0].id})
        return page(request, "trades.html", session, rows=rows, f=f, names=names,
                    symbols=symbols, statuses=[t.value for t in TradeStatus], problems=problems,
                    raw={"since": since, "until": until}, older=older)

    @app.get("/trades/{trade_id}", response_class=HTMLResponse)
    async def trade_page(request: Request, trade_id: int) -> HTMLResponse:
        session = signed_in(request)
        state: AppState = app.state.tw
        async with state.sessionmaker() as s:
            detail = await queries.trade_detail(s, trade_id) if 0 < trade_id < 2**63 else None
        if detail is None:
            return page(request, "missing.html", session, what=f"trade #{trade_id}")
        # A running trade's exit plan as it stands (its levels, its stop, its trail), asked of
        # the trade itself as GET /trades/{id} does; none once it has ended.
        exits = None
        if detail.trade.workflow_id and not TradeStatus(detail.trade.status).is_final:
            # Imported on the first such page: the other pages read PostgreSQL only, and a
            # dashboard holds Temporal's SDK only once it asks a trade (tests/test_cli_lean.py).
            from webhook import trades as trades_api

            exits = await trades_api.live_exits(state, detail.trade.workflow_id)
        return page(request, "trade.html", session, d=detail, exits=exits,
                    workflow_url=settings.workflow_url(detail.trade.workflow_id))

    @app.get("/strategies", response_class=HTMLResponse)
    async def strategies_page(request: Request) -> HTMLResponse:
        session = signed_in(request)
        state: AppState = app.state.tw
        async with state.sessionmaker() as s:
            views = await queries.strategy_views(s)
        # Exact decimal text, as everywhere: the chart script turns it into its own numbers.
        charts = {v.name: {
            "pnl": ([[int(v.stats.start.timestamp()), "0"]] if v.stats.start and v.stats.curve
                    else []) + [[int(t.timestamp()), format(p, "f")] for t, p in v.stats.curve],
            "slippage": [[int(q.received_at.timestamp()), format(q.slippage_bps, "f")]
                         for q in v.per_trade
                         if q.slippage_bps is not None and q.received_at is not None],
            "latency": [[int(q.received_at.timestamp()), str(q.alert_to_fill_ms)]
                        for q in v.per_trade
                        if q.alert_to_fill_ms is not None and q.received_at is not None],
        } for v in views}
        return page(request, "strategies.html", session, views=views, charts=charts)

    @app.get("/alerts", response_class=HTMLResponse)
    async def alerts_page(request: Request, outcome: str = "", strategy: str = "") -> HTMLResponse:
        session = signed_in(request)
        state: AppState = app.state.tw
        outcomes = [o.value for o in SignalOutcome]
        async with state.sessionmaker() as s:
            rows = await queries.alerts(s, outcome=outcome if outcome in outcomes else None,
                                        strategy=strategy.strip() or None)
            names = await queries.strategy_names(s)
        return page(request, "alerts.html", session, rows=rows, outcomes=outcomes,
                    outcome=outcome, strategy=strategy, names=names)

    @app.get("/incidents", response_class=HTMLResponse)
    async def incidents_page(request: Request, status: str = "open") -> HTMLResponse:
        session = signed_in(request)
        state: AppState = app.state.tw
        statuses = [s.value for s in IncidentStatus]
        async with state.sessionmaker() as s:
            rows = await queries.incidents(s, status if status in statuses else None)
        return page(request, "incidents.html", session, rows=rows, status=status,
                    statuses=statuses)

    # --- actions -------------------------------------------------------------------------------

    @app.post("/risk/{verb}")
    async def change_state(request: Request, verb: str) -> RedirectResponse:
        fields = await form(request)
        form_guard(request, fields.get("csrf"))
        reason, strategy = fields.get("reason", ""), fields.get("strategy", "")
        flatten = fields.get("flatten", "")
        done = await actions.set_trading_state(
            app.state.tw, verb, strategy=strategy.strip() or None,
            reason=reason.strip() or None, flatten=flatten == "on")
        return back(request, "/", done)

    @app.post("/incidents/{incident_id}/{verb}")
    async def answer(request: Request, incident_id: int, verb: str) -> RedirectResponse:
        fields = await form(request)
        form_guard(request, fields.get("csrf"))
        note, stop_pct = fields.get("note", ""), fields.get("stop_pct", "")
        try:
            stop = Decimal(stop_pct) if stop_pct.strip() else None
        except InvalidOperation:
            return back(request, "/incidents", actions.Done(False, f"stop % {stop_pct!r} is not"
                                                            " a number"))
        if not 0 < incident_id < 2**63:
            return back(request, "/incidents", actions.Done(False, "no such incident"))
        done = await actions.answer_incident(app.state.tw, incident_id, verb,
                                             note=note.strip() or None, stop_pct=stop)
        return back(request, "/incidents", done)

    # --- live ----------------------------------------------------------------------------------

    @app.get("/events")
    async def events(request: Request) -> StreamingResponse:
        """Server-sent events: the overview's live parts, sent when they change. The stream
        ends after MAX_STREAM_S (the browser reconnects), so no connection lives forever."""
        signed_in(request)
        state: AppState = app.state.tw

        async def stream() -> AsyncIterator[str]:
            last = None
            loop = asyncio.get_running_loop()
            deadline = loop.time() + MAX_STREAM_S
            yield "retry: 2000\n\n"
            while loop.time() < deadline and not await request.is_disconnected():
                try:
                    parts = (await Snapshot.read(state)).fragments(templates)
                except Exception as exc:  # noqa: BLE001 - a failed read is retried, not fatal
                    log.warning("ui: live read failed: %s", exc)
                    parts = None
                if parts is not None and parts != last:
                    last = parts
                    yield f"event: overview\ndata: {json.dumps(parts)}\n\n"
                await asyncio.sleep(LIVE_INTERVAL_S)

        return StreamingResponse(stream(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store",
                                          "X-Accel-Buffering": "no"})

    return app


class SecurityHeaders:
    """CSP and friends on every answer. Plain ASGI (not BaseHTTPMiddleware), so the event
    stream passes through untouched and ends cleanly when the server stops."""

    HEADERS = [(b"content-security-policy", CSP.encode()), (b"x-frame-options", b"DENY"),
               (b"x-content-type-options", b"nosniff"), (b"referrer-policy", b"same-origin")]

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                named = {k.lower() for k, _ in headers}
                headers += [(k, v) for k, v in self.HEADERS if k not in named]
                if any(k.lower() == b"content-type" and v.startswith(b"text/html")
                       for k, v in headers) and b"cache-control" not in named:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


def _flash_value(done: actions.Done) -> str:
    """The outcome as cookie-safe text (base64 of JSON: a message may hold any character)."""
    text = json.dumps({"ok": done.ok, "message": done.message[:1000]})
    return base64.urlsafe_b64encode(text.encode()).decode()


def _read_flash(value: str | None) -> dict[str, Any] | None:
    """The outcome to show once; anything else in the cookie is ignored."""
    if not value:
        return None
    try:
        shown = json.loads(base64.urlsafe_b64decode(value.encode()))
    except (ValueError, TypeError):
        return None
    if not isinstance(shown, dict) or not isinstance(shown.get("message"), str):
        return None
    return {"ok": shown.get("ok") is True, "message": shown["message"]}


class FormTooLarge(Exception):
    pass


async def form(request: Request) -> dict[str, str]:
    """An urlencoded form (the pages post nothing else), each field's first value; a body past
    MAX_FORM_BYTES is refused before it is read whole."""
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge
    try:
        parsed = parse_qs(body.decode(), keep_blank_values=True, max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items() if v and "\x00" not in v[0]}


def _local(target: str) -> str:
    """Only a path on this site (no open redirect after sign-in)."""
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _status(value: str, problems: list[str]) -> TradeStatus | None:
    if not value:
        return None
    try:
        return TradeStatus(value.upper())
    except ValueError:
        problems.append(f"status {value!r} is not one of {', '.join(t.value for t in TradeStatus)}")
        return None


def _day(value: str, which: str, problems: list[str]) -> date | None:
    if not value.strip():
        return None
    try:
        return date.fromisoformat(value.strip())
    except ValueError:
        problems.append(f"date {which} {value!r} is not a day (YYYY-MM-DD)")
        return None
