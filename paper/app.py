"""The paper exchange's HTTP app: BitUnix's paths, envelope and auth, plus the local admin API.

Every BitUnix-path request goes through one path (`_handle`): stamp the receipt time →
parse → (private) latency and pre-processing faults → signature → rate limit → engine call
under the lock → envelope `{"code","msg","data"}` → request log. Business errors are HTTP 200
with their code; only faults answer 5xx.

Entry points: `create_app(settings)` and `serve(settings)` (what `tradewire exchange` runs).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from email.utils import formatdate
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from paper import auth, errors, faults, persistence
from paper.admin import router as admin_router
from paper.engine import Engine
from paper.errors import ExchangeError
from paper.ratelimit import RateLimiter
from paper.requestlog import RequestLog
from paper.routes import ENDPOINTS, Endpoint
from paper.wire import parse_json_body
from serving import server_options
from settings import Settings

log = logging.getLogger("paper")
# How often a changed state is written (and always at a clean stop). Each write encodes the
# whole state, which grows with every order: at 0.2 s it was a fifth of the paper exchange's
# CPU in `make bench`'s cost series (issue 24). A kill loses at most this much of the paper's
# state; the real exchange is never the paper one.
SAVE_DEBOUNCE_S = 1.0
# A `hang` fault holds a request for 30 s; do not let it hold Ctrl-C that long.
SHUTDOWN_GRACE_S = 3


@dataclass
class Runtime:
    """What the routes share: one engine behind one lock, and the request-side machinery."""

    settings: Settings
    engine: Engine
    limiter: RateLimiter
    requests: RequestLog = field(default_factory=RequestLog)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    dirty: bool = False
    # Bumped by reset: a request still held by a latency fault from before the reset must not
    # act on (or use the rate limit of) the world after it.
    generation: int = 0

    def reset(self) -> None:
        self.generation += 1
        self.engine.reset()
        self.limiter.reset()
        self.requests.clear()
        self.dirty = True

    def snapshot(self) -> tuple[Any, Any]:
        prices = {s: sm.price for s, sm in self.engine.market.symbols.items()}
        return self.engine.state, prices


def create_app(settings: Settings, *, frozen: bool = False) -> FastAPI:
    """The simulator app. `frozen=True` starts (and resets) with every random walk stopped,
    as tests want; state is loaded from Settings.paper_state_file when that file exists."""
    engine = Engine(settings, frozen=frozen)
    if settings.paper_state_file is not None:
        _restore(engine, settings.paper_state_file)
    rt = Runtime(settings, engine, RateLimiter(settings.paper_rate_limit_scale))
    app = FastAPI(title="Tradewire paper exchange (BitUnix-compatible)", lifespan=_lifespan)
    app.state.rt = rt
    for ep in ENDPOINTS:
        app.add_api_route(ep.path, _route(ep), methods=[ep.method], include_in_schema=False)
    app.include_router(admin_router)
    return app


def _restore(engine: Engine, path: Path) -> None:
    loaded = persistence.load(path)
    if loaded is None:
        return
    state, prices = loaded
    known = engine.pairs.keys()
    gone = {o.symbol for o in state.orders.values()} | {p.symbol for p in state.positions.values()}
    if gone - known:
        # The pairs file changed under a saved account: drop what can no longer be served.
        log.warning("paper state: dropping records of unknown symbols %s", sorted(gone - known))
        state.orders = {k: o for k, o in state.orders.items() if o.symbol in known}
        state.positions = {k: p for k, p in state.positions.items() if p.symbol in known}
        state.tpsl = {k: t for k, t in state.tpsl.items() if t.symbol in known}
        state.fills = [f for f in state.fills if f.symbol in known]
    for coin in engine.fresh_state().balances.keys() - state.balances.keys():
        state.balances[coin] = engine.settings.paper_balance
    engine.state = state
    for symbol, price in prices.items():
        if symbol in engine.market.symbols:
            engine.market.symbols[symbol].price = price
    log.info("paper state loaded from %s", path)


def serve(settings: Settings) -> None:
    """Run the paper exchange on settings.paper_host:settings.exchange_port until interrupted
    (loopback unless TRADEWIRE_PAPER_HOST names another address; TRADEWIRE_HOST opens only the
    webhook)."""
    log.info("paper exchange on http://%s:%s", settings.paper_host, settings.exchange_port)
    uvicorn.run(
        create_app(settings),
        **server_options(settings, host=settings.paper_host, port=settings.exchange_port),
        timeout_graceful_shutdown=SHUTDOWN_GRACE_S,
        date_header=False,  # the routes date their answers (fault clock_skew_ms)
    )


@contextlib.asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    rt: Runtime = app.state.rt
    tasks = [asyncio.create_task(_walk(rt), name="paper-walk")]
    if rt.settings.paper_state_file is not None:
        tasks.append(asyncio.create_task(_saver(rt), name="paper-save"))
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await _save(rt)


async def _walk(rt: Runtime) -> None:
    interval = float(rt.settings.paper_tick_interval_s)  # float-ok: time or rate, not money
    while True:
        await asyncio.sleep(interval)
        async with rt.lock:
            if rt.engine.tick():
                rt.dirty = True


async def _saver(rt: Runtime) -> None:
    while True:
        await asyncio.sleep(SAVE_DEBOUNCE_S)
        if rt.dirty:
            await _save(rt)


async def _save(rt: Runtime) -> None:
    path = rt.settings.paper_state_file
    if path is None:
        return
    async with rt.lock:
        state, prices = rt.snapshot()
        state_json, prices_json = persistence.encode(state), persistence.encode(prices)
        rt.dirty = False
    await asyncio.to_thread(persistence.write, path, state_json, prices_json)


def envelope(code: int, msg: str, data: Any) -> JSONResponse:
    return JSONResponse({"code": code, "msg": msg, "data": data})


def _route(ep: Endpoint) -> Callable[[Request], Awaitable[Response]]:
    async def route(request: Request) -> Response:
        response = await _handle(request, ep)
        # The simulator dates its answers itself (uvicorn's own Date header is off), so a
        # test can put its clock off the real one (fault clock_skew_ms).
        skew = request.app.state.rt.engine.faults.clock_skew_ms
        now_s = (time.time_ns() // 1_000_000 + skew) / 1000  # float-ok: time
        response.headers["date"] = formatdate(now_s, usegmt=True)
        return response

    route.__name__ = ep.path.rsplit("/", 2)[-2] + "_" + ep.path.rsplit("/", 1)[-1]
    return route


async def _handle(request: Request, ep: Endpoint) -> Response:
    t_ns = time.time_ns()
    rt: Runtime = request.app.state.rt
    generation = rt.generation
    client_id: str | None = None
    code = errors.OK
    try:
        raw = await request.body()
        params = dict(request.query_params) if ep.method == "GET" else parse_json_body(raw)
        cid = params.get("clientId")
        client_id = cid if isinstance(cid, str) else None
        if ep.private:
            early = await _pre_processing(rt)
            if early is not None:
                code = early.status_code if early.status_code != 200 else _code_of(early)
                return early
            if rt.generation != generation:
                code = 503
                return Response(status_code=503, content=b"reset while in flight")
            auth.verify(request.headers, request.url.query, raw, rt.settings.paper_api_key,
                        rt.settings.paper_api_secret.get_secret_value(),
                        t_ns // 1_000_000 + rt.engine.faults.clock_skew_ms)
        identity = rt.settings.paper_api_key if ep.private else _peer(request)
        if not rt.limiter.allow(identity, ep.path, ep.private):
            raise ExchangeError(errors.REQUEST_TOO_FREQUENT)
        async with rt.lock:
            data = ep.handler(rt.engine, params)
            if ep.mutates:
                rt.dirty = True
            after = rt.engine.faults.take_price_after(ep.path) if ep.private else None
            if after is not None:
                log.info("fault: price of %s set to %s after %s", after[0], after[1], ep.path)
                rt.engine.set_price(*after)
                rt.dirty = True
            if ep.private:
                rt.engine.faults.take_faults_after(ep.path)
            drop = rt.engine.faults.take_drop(ep.drop_target) if ep.drop_target else None
        if drop is not None:
            log.info("fault: dropping the answer of %s (%s)", ep.path, drop)
            if drop == "hang":
                await asyncio.sleep(faults.HANG_SECONDS)
            code = 504
            return Response(status_code=504, content=b"Gateway Timeout")
        return envelope(errors.OK, errors.MESSAGES[errors.OK], data)
    except ExchangeError as exc:
        code = exc.code
        return envelope(exc.code, exc.msg, None)
    except Exception:
        log.exception("paper exchange: unexpected error on %s", ep.path)
        code = 500
        return JSONResponse({"code": 500, "msg": "internal error"}, status_code=500)
    finally:
        rt.requests.record(t_ns, ep.method, ep.path, client_id, code)


async def _pre_processing(rt: Runtime) -> Response | None:
    f = rt.engine.faults
    if f.latency_ms:
        await asyncio.sleep(f.latency_ms / 1000)
    fault = f.before_processing()
    if fault == "http_5xx":
        return Response(status_code=503, content=b"Service Unavailable")
    if fault == "error_rate":
        return Response(status_code=500, content=b"Internal Server Error")
    if fault == "network_error":
        return envelope(errors.NETWORK_ERROR, errors.MESSAGES[errors.NETWORK_ERROR], None)
    if fault == "rate_limit":
        msg = errors.MESSAGES[errors.REQUEST_TOO_FREQUENT]
        return envelope(errors.REQUEST_TOO_FREQUENT, msg, None)
    return None


def _code_of(response: Response) -> int:
    return int(json.loads(bytes(response.body))["code"])


def _peer(request: Request) -> str:
    return request.client.host if request.client else "unknown"
