"""What the overview shows and keeps current: the trading state, today's PnL and equity, the
open positions with the trades that own them, open incidents and the newest alerts. One read
for the page and for each tick of its event stream (ui/app.py `/events`)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from fastapi.templating import Jinja2Templates

from db.models import Incident, Signal
from ui import queries
from ui.format import when
from webhook import risk
from webhook.deps import AppState

LIVE_INTERVAL_S = 1.0  # a tick of the stream: one small read of PostgreSQL
MAX_STREAM_S = 300.0  # then the stream ends and the browser reconnects (EventSource does)
RECENT_ALERTS = 10
# The overview's parts the stream replaces, by element id `live-<name>`.
PARTS = ("state", "pnl", "positions", "alerts", "incidents")


@dataclass
class Snapshot:
    risk: dict[str, Any]  # GET /risk's own answer (webhook/risk.py show_risk)
    positions: list[queries.Position]
    alerts: list[tuple[Signal, int | None]]
    incidents: list[Incident]
    open_incidents: int

    @classmethod
    async def read(cls, state: AppState) -> Snapshot:
        answer = await risk.show_risk(state)
        async with state.sessionmaker() as session:
            positions = await queries.open_positions(session)
            alerts = await queries.alerts(session, limit=RECENT_ALERTS)
            incidents = await queries.incidents(session, "open", limit=10)
            count = await queries.count_open_incidents(session)
        return cls(json.loads(bytes(answer.body)), positions, alerts, incidents, count)

    @property
    def equity(self) -> str | None:
        """The account's equity now: the day's starting equity (read by the worker at the day's
        first watcher round, activities/daily_loss.py) plus today's PnL (realized with fees,
        unrealized at mark); None until that round has run."""
        today = self.risk["today"]
        if today["start_equity"] is None:
            return None
        return format(Decimal(today["start_equity"]) + Decimal(today["account"]["pnl"]), "f")

    @property
    def unrealized(self) -> tuple[Decimal | None, str]:
        """The account's unrealized PnL and where it comes from: the daily loss latch's figure
        where it keeps one, else the sum over the open positions of the exchange's own figure
        as the trades' tracking last read it (each trade reads at its tracking interval)."""
        account = self.risk["today"]["account"]
        if account["unrealized"] is not None:
            return Decimal(account["unrealized"]), f"daily loss latch, as of {account['at']}"
        read = [p.exchange for p in self.positions if p.exchange is not None and p.qty > 0]
        if not read:
            return None, "no open position read"
        newest = max(r.updated_at for r in read)
        return (sum((r.unrealized_pnl for r in read), Decimal(0)),
                f"the exchange's positions as the trades last read them (newest {when(newest)})")

    def fragments(self, templates: Jinja2Templates) -> dict[str, str]:
        return {name: templates.get_template(f"_{name}.html").render(snap=self)
                for name in PARTS}
