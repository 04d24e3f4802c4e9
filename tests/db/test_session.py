"""The engine's connection checks: a connection handed out again straight after use is not
pinged first (a round trip per transaction, ~36 per trade, measured by `python -m bench
--only cost`); one that sat idle is, and a dead one is replaced before anyone uses it."""

from __future__ import annotations

import asyncio

import psycopg
from sqlalchemy import text

from db.session import make_engine


def _plain(url: str) -> str:
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def _last_query(url: str, pid: int) -> str:
    """What the backend `pid` ran last, seen from another connection."""
    with psycopg.connect(_plain(url), autocommit=True) as observer:
        row = observer.execute("SELECT query FROM pg_stat_activity WHERE pid = %s",
                               (pid,)).fetchone()
    assert row is not None
    return str(row[0]).strip()


async def test_a_connection_reused_at_once_is_not_pinged_first(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1, ping_after_idle_s=60.0)
    try:
        async with engine.connect() as conn:
            pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        async with engine.connect() as conn:  # the same pooled connection, just returned
            seen = await asyncio.to_thread(_last_query, db_url, pid)
            assert int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()) == pid
        # The last thing it ran is the pool's reset on return, not a ping (";").
        assert seen != ";"
        assert seen.upper() == "ROLLBACK"
    finally:
        await engine.dispose()


async def test_a_connection_idle_past_the_limit_is_pinged(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1, ping_after_idle_s=0.0)
    try:
        async with engine.connect() as conn:
            pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        async with engine.connect():
            seen = await asyncio.to_thread(_last_query, db_url, pid)
        assert seen == ";"
    finally:
        await engine.dispose()


async def test_a_dead_idle_connection_is_replaced_before_use(db_url: str) -> None:
    engine = make_engine(db_url, pool_size=1, ping_after_idle_s=0.0)
    try:
        async with engine.connect() as conn:
            pid = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        with psycopg.connect(_plain(db_url), autocommit=True) as admin:
            assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)
        async with engine.connect() as conn:  # no error: the ping found it dead
            other = int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())
        assert other != pid
    finally:
        await engine.dispose()
