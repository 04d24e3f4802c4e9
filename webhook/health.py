"""GET /healthz: anonymous callers get up or down (`{"status": "up"}`, 200 or 503); with the
admin token, ok/fail per component, the count of open incidents, the trading states
(docs/design.md#risk: the account's and every strategy's with a row; a latch shows in the
detail) and each check's detail. Its cost is bounded however often it is called (HealthChecks).

Open incidents (docs/design.md#the-ownership-invariant) make the admin's status "degraded" but
keep the answer 200 ("up"): `tradewire up` starts the worker, whose watcher is what resolves them, only once
this answers 200, and a proxy that routes by health would otherwise cut off the exit alerts
that reduce the risk. `?strict=true` answers 503 for "degraded" too, for monitors that page."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from sqlalchemy import text

from activities.risk import RiskBook
from settings import Settings
from trading.risk import scope_label
from webhook.apidoc import HEALTH, OPTIONAL_ADMIN_TOKEN, answers
from webhook.deps import AppState, app_state, has_admin_token
from webhook.incidents import open_incidents

router = APIRouter()
CHECK_TIMEOUT_S = 2
EXCHANGE_PROBE_SYMBOL = "BTCUSDT"


async def _check_database(state: AppState) -> str:
    async with state.engine.connect() as conn:
        await conn.execute(text("SELECT 1"))
    return "reachable"


async def _check_temporal(state: AppState) -> str:
    client = await state.temporal.try_connect()
    if client is None:
        raise ConnectionError(f"cannot connect to {state.temporal.target}")
    await client.service_client.check_health()
    return f"{state.temporal.target} namespace {state.temporal.namespace}"


def exchange_probe_client(app: Any, state: AppState) -> Any:  # -> exchange.client.BitunixClient
    """The app's one client for the exchange check, made on first use; `close_exchange_probe`
    closes it. A client per check built a TLS context (CA bundle loaded) every time: about
    6 MiB of resident growth over the first 50 checks, and Docker checks every few seconds."""
    client = getattr(app.state, "health_exchange", None)
    if client is None:
        from wiring import public_exchange_client

        # A public read needs no keys: this process holds none off the fast path.
        client = app.state.health_exchange = public_exchange_client(state.settings)
    return client


async def close_exchange_probe(app: Any) -> None:
    client = getattr(app.state, "health_exchange", None)
    if client is not None:
        app.state.health_exchange = None
        await client.aclose()


async def _check_exchange(state: AppState, app: Any) -> str:
    """A cheap public call (one symbol's ticker) through the same client class the trades use."""
    tickers = await exchange_probe_client(app, state).tickers([EXCHANGE_PROBE_SYMBOL])
    if not tickers:
        raise LookupError(
            f"{state.settings.exchange_url} has no ticker for {EXCHANGE_PROBE_SYMBOL}"
        )
    mark = format(tickers[0].mark_price, "f")
    return f"{state.settings.exchange} {state.settings.exchange_url}: {EXCHANGE_PROBE_SYMBOL} mark {mark}"


async def _count_incidents(state: AppState) -> tuple[int, str]:
    count, oldest = await open_incidents(state.sessionmaker)
    named = ", ".join(f"#{r.id} {r.kind} {r.symbol}" + (f" {r.side}" if r.side else "")
                      for r in oldest)
    return count, f"{count} open" + (f" (oldest first): {named}" if count else "")


async def _risk_states(state: AppState) -> tuple[dict[str, str], str]:
    """scope → state, and what each non-ACTIVE one is and why (a latch says so)."""
    states = await RiskBook(state.sessionmaker).states()
    said = [f"{scope_label(s.scope)} {s.state.value}"
            + (" (latched)" if s.latched else "") + (" with flatten" if s.flatten else "")
            + f" by {s.changed_by}: {s.reason}"
            for s in states.values() if s.state.strictness > 0]
    return {s.scope: s.state.value for s in states.values()}, "; ".join(said) or "all ACTIVE"


async def _run(check: Any, *args: Any) -> tuple[bool, Any, float]:
    started = time.perf_counter()
    try:
        detail = await asyncio.wait_for(check(*args), CHECK_TIMEOUT_S)
        ok = True
    except Exception as exc:  # noqa: BLE001 - the point is to report any failure
        detail, ok = f"{type(exc).__name__}: {exc}", False
    return ok, detail, round((time.perf_counter() - started) * 1000, 1)


Result = tuple[bool, Any, float]  # float-ok: ok, detail, ms


@dataclass(frozen=True)
class Outcome:
    value: Any
    at: float  # float-ok: time.monotonic() when it finished


class SingleFlight:
    """At most one run of `job` in flight, shared by every caller that comes while it runs; its
    outcome reused for `ttl_s` after (0: only shared while running). A caller that goes away
    does not cancel the run the others wait for."""

    def __init__(self, ttl_s: float) -> None:  # float-ok: seconds
        self.ttl_s = ttl_s
        self._last: Outcome | None = None
        self._running: asyncio.Task[Outcome] | None = None

    async def get(self, job: Callable[[], Awaitable[Any]]) -> Outcome:
        last = self._last
        if last is not None and time.monotonic() - last.at < self.ttl_s:
            return last
        if self._running is None or self._running.done():
            self._running = asyncio.create_task(self._run(job), name="healthz-check")
        return await asyncio.shield(self._running)

    async def _run(self, job: Callable[[], Awaitable[Any]]) -> Outcome:
        self._last = Outcome(await job(), time.monotonic())
        return self._last


@dataclass
class HealthChecks:
    """/healthz's cost is bounded however often, and by however many callers at once, it is
    asked: the component probes (database, Temporal, the exchange's ticker) run at most once
    per `healthz_cache_s`, and the open-incident count (which operators watch change, so it is
    not reused) at most once at a time. Each answer used to probe the exchange itself, and a
    flood queued reservations in the client's request budget until every probe timed out:
    "exchange: fail" for minutes after the flood (review D5)."""

    components: SingleFlight
    incidents: SingleFlight
    # The trading states, like the incidents, are never reused (a halt must show at once).
    risk: SingleFlight = field(default_factory=lambda: SingleFlight(0.0))


def health_checks(app: Any, settings: Settings) -> HealthChecks:
    checks = getattr(app.state, "health_checks", None)
    if checks is None:
        ttl = float(settings.healthz_cache_s)  # float-ok: seconds
        checks = app.state.health_checks = HealthChecks(SingleFlight(ttl), SingleFlight(0.0))
    return checks  # type: ignore[no-any-return]


async def _probe_components(state: AppState, app: Any) -> dict[str, Result]:
    checks = {
        "database": (_check_database, state),
        "temporal": (_check_temporal, state),
        "exchange": (_check_exchange, state, app),
    }
    answers = await asyncio.gather(*(_run(*c) for c in checks.values()))
    return dict(zip(checks, answers, strict=True))


@router.get(
    "/healthz",
    openapi_extra=OPTIONAL_ADMIN_TOKEN,
    responses={
        200: {"model": HEALTH, "description": "up (anonymous), or each component (admin token)"},
        503: {
            "model": HEALTH,
            "description": "down: a component failed (or, with strict=true, incidents are open)",
        },
    }
    | answers(413, 422),
)
async def healthz(
    request: Request, strict: bool = False, state: AppState = Depends(app_state)
) -> JSONResponse:
    checks = health_checks(request.app, state.settings)
    probed, counted_now, risk_now = await asyncio.gather(
        checks.components.get(lambda: _probe_components(state, request.app)),
        checks.incidents.get(lambda: _run(_count_incidents, state)),
        checks.risk.get(lambda: _run(_risk_states, state)),
    )
    results: dict[str, Result] = probed.value
    all_ok = all(ok for ok, _, _ in results.values())
    counted_ok, counted_detail, counted_ms = counted_now.value
    # null: the database could not say (it is down, or not migrated yet)
    incidents = counted_detail[0] if counted_ok else None
    degraded = bool(incidents)
    status = "fail" if not all_ok else "degraded" if degraded else "ok"
    healthy = all_ok and not (strict and degraded)
    code = 200 if healthy else 503
    if not has_admin_token(request, state.settings):
        # Anonymous callers (a load balancer, the container's healthcheck, anybody) learn up or
        # down only: nothing about what runs, what failed, or the operator's incidents.
        return JSONResponse({"status": "up" if healthy else "down"}, status_code=code)
    # The admin's view: each component, the open incidents, each check's detail and time.
    body: dict[str, Any] = {name: "ok" if ok else "fail" for name, (ok, _, _) in results.items()}
    body["incidents"] = incidents
    risk_ok, risk_detail, risk_ms = risk_now.value
    body["risk"] = risk_detail[0] if risk_ok else None
    body["status"] = status
    details = {name: {"detail": detail, "ms": ms} for name, (_, detail, ms) in results.items()}
    details["incidents"] = {
        "detail": counted_detail[1] if counted_ok else counted_detail, "ms": counted_ms
    }
    details["risk"] = {"detail": risk_detail[1] if risk_ok else risk_detail, "ms": risk_ms}
    body["details"] = details
    body["checked_s_ago"] = round(time.monotonic() - probed.at, 1)
    return JSONResponse(body, status_code=code)
