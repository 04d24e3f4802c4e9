"""`tradewire reconcile`: hold the exchange against the books now, as a starting worker's
account watcher does (docs/design.md#the-ownership-invariant). Every open trade is signalled, so
one whose workflow is gone is found (`untracked_trade`); the positions and the working
Tradewire orders are compared with what the open trades own; every mismatch is an incident at
once, without the settle window (run it when nothing is in flight, e.g. with the worker
stopped). Prints the open incidents; the exit status is 1 while any is open."""

from __future__ import annotations

import argparse
import asyncio
import sys
from decimal import Decimal
from typing import Any

from cli import load_settings
from settings import Settings


def register(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "reconcile", help="compare the exchange with the open trades now; raise incidents"
    )
    p.set_defaults(func=cmd_reconcile)


def cmd_reconcile(args: argparse.Namespace) -> int:
    settings = load_settings()
    rows = asyncio.run(reconcile(settings))
    if not rows:
        print("balanced: the exchange holds what the open trades own, and every working "
              "Tradewire order belongs to one")
        return 0
    print(f"{len(rows)} open incident(s) (`tradewire incidents` lists them):")
    for row in rows:
        where = f"{row['symbol']} {row['side']}" if row["side"] else row["symbol"]
        print(f"  #{row['id']} {row['kind']} {where}: {row['detail']}")
    return 1


async def reconcile(settings: Settings) -> list[dict[str, Any]]:
    """One watcher round with no settle window; the open incidents after it."""
    from sqlalchemy import select

    from activities.watcher import FillWindow, WatcherActivities
    from db.models import Incident
    from db.session import make_engine, make_sessionmaker
    from trading.types import IncidentStatus
    from wiring import exchange_client
    from workflows.converter import connect

    if not settings.database_url:
        print("tradewire reconcile: set TRADEWIRE_DATABASE_URL (or run `tradewire up`)",
              file=sys.stderr)
        raise SystemExit(2)
    engine = make_engine(settings.database_url)
    try:
        sessions = make_sessionmaker(engine)
        temporal = await connect(settings.temporal_target, settings.temporal_namespace)
        async with exchange_client(settings) as client:
            watcher = WatcherActivities(client, sessions, temporal, settle_s=Decimal(0),
                                        account_limits=settings.risk_limits,
                                        latch_state=settings.risk_latch_state,
                                        day_timezone=settings.risk_day_timezone,
                                        latch_flatten=settings.risk_latch_flatten)
            await watcher.round(None, FillWindow())
        async with sessions() as session:
            found = await session.scalars(
                select(Incident)
                .where(Incident.status == IncidentStatus.OPEN.value)
                .order_by(Incident.id)
            )
            return [
                {"id": r.id, "kind": r.kind, "symbol": r.symbol, "side": r.side,
                 "detail": r.detail}
                for r in found.all()
            ]
    finally:
        await engine.dispose()
