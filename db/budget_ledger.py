"""The account's request budget in PostgreSQL: slots leased to every process that signs.

BitUnix limits requests per endpoint per account, not per process (docs/bitunix.md#rate-limits),
so the budget lives where every process can reach it: one `exchange_budget` row per endpoint,
granted from by `exchange_budget_lease` (migration 0012) in one statement under the row's lock.
This module only calls that function; exchange/shared_budget.py decides when to ask and for how
many slots. It knows nothing of endpoints' limits: the caller passes them.

Its own small pool in autocommit: a lease is one round trip, and never waits behind a session of
the process's main pool.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import psycopg
from sqlalchemy.engine import make_url

# Seconds, as the function returns them (the clock's reading, not money).
_LEASE = (
    "SELECT granted, start_at, end_at, now_at FROM exchange_budget_lease("
    "%(endpoint)s, %(capacity)s, %(window_s)s, %(lease_s)s, %(want)s, %(now)s)"
)


@dataclass(frozen=True)
class Lease:
    """`granted` slots, each usable once between `start` and `end`; times are the database's
    clock (epoch seconds), `now` its reading when it granted them."""

    granted: int
    start: float  # float-ok: seconds
    end: float  # float-ok: seconds
    now: float  # float-ok: seconds


class BudgetLedger:
    """One connection of its own, in autocommit, opened on first use and again after a failure.
    Plain psycopg rather than the process's SQLAlchemy engine: a lease comes before many
    requests, and SQLAlchemy's session and pool cost about 0.9 ms of CPU a call, psycopg's
    prepared statement a fraction of that."""

    def __init__(self, database_url: str) -> None:
        # A SQLAlchemy URL (postgresql+psycopg://…) as every setting holds it; libpq's own form.
        self._conninfo = make_url(database_url).set(drivername="postgresql").render_as_string(
            hide_password=False)
        self._conn: psycopg.AsyncConnection | None = None
        self._lock = asyncio.Lock()  # one statement at a time on the one connection

    @classmethod
    def connect(cls, database_url: str) -> BudgetLedger:
        return cls(database_url)

    async def aclose(self) -> None:
        async with self._lock:
            if self._conn is not None:
                await self._conn.close()
                self._conn = None

    async def lease(self, endpoint: str, *, capacity: int, window_s: float,  # float-ok: seconds
                    lease_s: float, want: int, now: float | None = None) -> Lease:  # float-ok: seconds
        """Up to `want` slots of `endpoint` (at least one, perhaps starting later). `now`
        replaces the database's clock (tests only). Raises psycopg.Error when the database
        does not answer (the connection is then opened again on the next call)."""
        params = {"endpoint": endpoint, "capacity": capacity, "window_s": window_s,
                  "lease_s": lease_s, "want": want, "now": now}
        async with self._lock:
            try:
                if self._conn is None or self._conn.closed:
                    self._conn = await psycopg.AsyncConnection.connect(
                        self._conninfo, autocommit=True)
                cursor = await self._conn.execute(_LEASE, params, prepare=True)
                row = await cursor.fetchone()
            except BaseException:
                # Broken, or cancelled mid-statement (a timeout): never reuse it.
                if self._conn is not None:
                    await self._conn.close()
                    self._conn = None
                raise
        if row is None:
            raise psycopg.DataError("exchange_budget_lease returned no row")
        return Lease(granted=row[0], start=row[1], end=row[2], now=row[3])
