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

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

_LEASE = text(
    "SELECT granted, start_at, end_at, now_at FROM exchange_budget_lease("
    ":endpoint, :capacity, :window_s, :lease_s, :want, :now)"
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
    def __init__(self, engine: AsyncEngine) -> None:
        self._engine = engine

    @classmethod
    def connect(cls, database_url: str) -> BudgetLedger:
        """A ledger on its own pool: autocommit (one round trip per lease), no pre-ping (a dead
        connection fails the lease, and the caller falls back; the pool replaces it)."""
        engine = create_async_engine(database_url, pool_size=1, max_overflow=3,
                                     pool_pre_ping=False, isolation_level="AUTOCOMMIT")
        return cls(engine)

    async def aclose(self) -> None:
        await self._engine.dispose()

    async def lease(self, endpoint: str, *, capacity: int, window_s: float,  # float-ok: seconds
                    lease_s: float, want: int, now: float | None = None) -> Lease:  # float-ok: seconds
        """Up to `want` slots of `endpoint` (at least one, perhaps starting later). `now`
        replaces the database's clock (tests only)."""
        async with self._engine.connect() as conn:
            row = (await conn.execute(_LEASE, {
                "endpoint": endpoint, "capacity": capacity, "window_s": window_s,
                "lease_s": lease_s, "want": want, "now": now,
            })).one()
        return Lease(granted=row.granted, start=row.start_at, end=row.end_at, now=row.now_at)
