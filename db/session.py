"""Engine and session factory: one async engine per process, passed in, never global."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Engine, event
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

# A pooled connection is pinged before it is handed out only when it sat idle this long.
# SQLAlchemy's pool_pre_ping pings on every checkout: a round trip per transaction, ~36 per
# trade (bench: `python -m bench --only cost`), for connections used milliseconds before. A
# connection that dies between two uses this close together fails its statement, as one that
# dies between a ping and its statement always could.
PING_AFTER_IDLE_S = 1.0
_IDLE_SINCE = "tradewire_idle_since"  # in the DBAPI connection's pool info (reset with it)


def make_engine(database_url: str, *, pool_size: int = 5,
                ping_after_idle_s: float = PING_AFTER_IDLE_S) -> AsyncEngine:  # float-ok: seconds
    engine = create_async_engine(database_url, pool_size=pool_size, max_overflow=pool_size)
    _ping_when_idle(engine.sync_engine, ping_after_idle_s)
    return engine


def _ping_when_idle(engine: Engine, after_s: float) -> None:  # float-ok: seconds
    @event.listens_for(engine, "checkin")
    def _returned(dbapi_connection: Any, record: Any) -> None:
        if record.info is not None:  # None: the connection was invalidated
            record.info[_IDLE_SINCE] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _handed_out(dbapi_connection: Any, record: Any, proxy: Any) -> None:
        since = record.info.get(_IDLE_SINCE)
        if since is None or time.monotonic() - since < after_s:
            return  # just connected, or used a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            # The pool discards this connection and hands out a fresh one.
            raise DisconnectionError(f"an idle pooled connection failed its ping: {exc}") from exc


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
