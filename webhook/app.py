"""The webhook process: FastAPI app factory and its lifespan (engine, Temporal client)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

import metrics
from settings import Settings
from webhook import fast_path, health, incidents, risk, routes, trades
from webhook.auth import parse_network, server_key
from webhook.deps import AppState, TemporalHandle
from webhook.frontdoor import FrontDoor
from webhook.intake import Intake
from webhook.outbox import Outbox
from webhook.responder import Responder

log = logging.getLogger("webhook")
STOP_RETRY_S = 0.5


async def stop_task(task: asyncio.Task[None]) -> None:
    """Cancel a background loop and wait until it has ended. Cancelled again while it runs:
    Python 3.11's `asyncio.wait_for` loses a cancellation that arrives as its inner call
    completes, and the loop then sleeps on as if never told (the app's shutdown hung on it)."""
    while not task.done():
        task.cancel()
        await asyncio.wait({task}, timeout=STOP_RETRY_S)
    with contextlib.suppress(asyncio.CancelledError):
        task.result()


def create_app(settings: Settings, database_url: str | None = None) -> FastAPI:
    """Build the app. `database_url` overrides the setting (the embedded server's URL)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        from db.session import make_engine, make_sessionmaker

        url = database_url or settings.database_url
        if not url:
            raise RuntimeError(
                "no database: set TRADEWIRE_DATABASE_URL (tradewire up sets it for its children)"
            )
        for proxy in settings.trusted_proxies:  # a typo must stop the start, not every alert
            try:
                parse_network(proxy)
            except ValueError as exc:
                raise RuntimeError(f"TRADEWIRE_TRUSTED_PROXIES: {exc}") from None
        engine = make_engine(url)
        temporal = TemporalHandle(settings.temporal_target, settings.temporal_namespace)
        await temporal.try_connect()
        app.state.tw = AppState(
            settings=settings,
            engine=engine,
            sessionmaker=make_sessionmaker(engine),
            temporal=temporal,
        )
        app.state.intake = Intake(app.state.tw, server_key(settings))
        scraped = await metrics.serve(settings, app.state.tw.sessionmaker, name="webhook")
        # Alerts recorded while Temporal did not take their start: started (or ended) later.
        sweeping = asyncio.create_task(Outbox(app.state.intake).run(), name="outbox")
        # The account's incident policy: unowned quantity adopted (protect) or flattened.
        responding = asyncio.create_task(Responder(app.state.tw).run(), name="responder")
        try:
            async with fast_path.hosted(app.state.tw):
                yield
        finally:
            for task in (sweeping, responding):
                await stop_task(task)
            await app.state.intake.starts.aclose()  # what is left stays QUEUED: the outbox's
            await health.close_exchange_probe(app)
            if scraped is not None:
                await scraped.close()
            await engine.dispose()

    docs = settings.docs_enabled
    app = FastAPI(
        title="Tradewire",
        lifespan=lifespan,
        docs_url="/docs" if docs else None,
        redoc_url=None,
        openapi_url="/openapi.json" if docs else None,
    )
    app.include_router(health.router)
    app.include_router(routes.router)
    app.include_router(trades.router)
    app.include_router(incidents.router)
    app.include_router(risk.router)
    # Outermost: the admin token and the body cap come before any route reads a body.
    app.add_middleware(FrontDoor, settings=settings)
    return app
