"""What goes into a trade workflow and what it returns: the strategy's parameters, the input
(with the memory a continued run carries) and the result. Its messages are in
workflows/messages.py, its state in workflows/state.py.

Pydantic models, carried by the pydantic data converter (Decimal stays exact). Nothing secret is
ever a field here: these values are written to Temporal's history.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trading.exits import ExitPlan
from trading.types import (
    ChaseFallback,
    EntryType,
    Intent,
    MarginMode,
    OnProtectionRefused,
    PositionSide,
    StopType,
    TradeStatus,
)
from workflows.state import TradeMemory


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


SIZINGS = ("size", "size_usdt", "size_pct", "risk_pct")


class Sizing(Frozen):
    """Exactly one way to size the entry (see trading.sizing)."""

    size: Decimal | None = None  # base units
    size_usdt: Decimal | None = None  # notional in the quote currency
    size_pct: Decimal | None = None  # percent of available margin committed as initial margin
    # percent of the account's equity the stop-loss loses if hit, both fees included
    risk_pct: Decimal | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Sizing:
        given = [n for n in SIZINGS if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of {', '.join(SIZINGS)} (got {given or 'none'})")
        return self


class StrategySnapshot(Frozen):
    """The strategy's parameters when the alert arrived: a later edit never changes a running
    trade (docs/design.md#strategy-snapshot)."""

    id: int | None = None
    name: str
    sizing: Sizing = Field(default_factory=lambda: Sizing(size_usdt=Decimal("100")))
    entry_type: EntryType = EntryType.MARKET
    leverage: int | None = None  # None: keep the symbol's current leverage
    margin_mode: MarginMode | None = None
    chase_interval_s: Decimal = Decimal("2")
    max_chases: int = 10
    max_slippage_bps: Decimal = Decimal("50")
    chase_fallback: ChaseFallback = ChaseFallback.MARKET
    exit_entry_type: EntryType = EntryType.MARKET
    max_alert_age_s: int = 60
    dedupe_window_s: int = 60
    notional_floor: Decimal | None = None
    allow_split: bool = False
    on_protection_refused: OnProtectionRefused = OnProtectionRefused.FLATTEN
    tracking_interval_s: int = 300  # the trade's own re-check; the account watcher is faster
    stop_type: StopType = StopType.MARK_PRICE
    rules_max_age_s: int = 3600
    # The strategy's risk limit on leverage, checked before the leverage is set (its other
    # limits, and the account's, are checked when the entry is claimed: activities/risk.py).
    max_leverage: int | None = None
    # The default exit plan (a take-profit ladder, a trailing stop): an alert's own wins, field
    # by field (webhook/routing.py).
    exits: ExitPlan | None = None

    @model_validator(mode="before")
    @classmethod
    def _sizing_from_columns(cls, data: Any) -> Any:
        """Read from a strategy row (`model_validate(row, from_attributes=True)`) or a dict of
        its columns: its three sizing columns become `sizing`; the rest match by name."""
        if isinstance(data, dict):
            if "sizing" in data or not any(n in data for n in SIZINGS):
                return data
            columns = data
        else:
            columns = {n: getattr(data, n) for n in (*cls.model_fields, *SIZINGS)
                       if hasattr(data, n)}
        out = {n: v for n, v in columns.items() if n not in SIZINGS}
        out["sizing"] = {n: columns.get(n) for n in SIZINGS}
        return out


class Adoption(Frozen):
    """A trade that enters by taking on quantity the exchange already holds and no trade owns
    (an incident's; docs/design.md#incident-policies) instead of sending an entry."""

    incident_id: int
    qty: Decimal  # at most this much: the incident's gap
    stop_pct: Decimal  # its protective stop, this many percent from the mark
    close: bool = False  # flatten: close it reduce-only at once (protected until it has)
    by: str = "watcher"  # who decided: the account policy or an operator


class Resume(Frozen):
    """A new run for a trade whose workflow is gone (docs/design.md#resuming-a-trade): it
    rebuilds its books from its rows instead of entering, then tracks as before."""

    incident_id: int | None = None
    by: str = "watcher"
    # A trade that placed a TP/SL whose prices are lost gets a stop this far from the mark.
    stop_pct: Decimal = Decimal(5)
    # The trade had an exit plan (docs/design.md#exits): a new run does not know which levels
    # filled or where its trail stood, so it keeps its stop only, and says so.
    exit_plan_dropped: bool = False


class TradeInput(Frozen):
    """One accepted alert, resolved: the webhook records it (signal + trade rows) and starts
    `TradeWorkflow` with this."""

    trade_id: int
    signal_id: int | None = None
    strategy: StrategySnapshot
    symbol: str  # the exchange symbol, already resolved against the pair list
    intent: Intent  # OPEN_LONG / OPEN_SHORT / REVERSE_TO_*
    sizing: Sizing | None = None  # None: the strategy's default
    entry_type: EntryType | None = None  # None: the strategy's default
    reference_price: Decimal | None = None  # the alert's price: limit price, slippage anchor
    leverage: int | None = None
    tp: Decimal | None = None
    sl: Decimal | None = None
    tp_pct: Decimal | None = None
    sl_pct: Decimal | None = None
    # The take-profit ladder and trailing stop, the alert's merged over the strategy's
    # (docs/design.md#exits); None: the single tp/tp_pct above, and no trail.
    exits: ExitPlan | None = None
    alert_time: datetime | None = None
    received_at: datetime
    # A reverse: close this trade (its own quantity) and wait for it before entering: the
    # newest opposite trade of the strategy on the symbol.
    close_first_workflow_id: str | None = None
    # ... and these, the older opposite trades (pyramiding), closed and waited for alike.
    # Empty in every input written before it existed, which stays valid.
    also_close_first_workflow_ids: tuple[str, ...] = ()
    # Separates installations (or a reset database whose ids start again) that share one
    # exchange account, so a client order id is never mistaken for an older one (trading.ids).
    client_id_namespace: str = ""
    # History length (events) after which a tracking trade continues as new.
    continue_as_new_after: int = 4000
    # Set only by the workflow itself when it continues as new.
    carry: TradeMemory | None = None
    # Set only for a trade that adopts an incident's unowned quantity (no entry is sent).
    adopt: Adoption | None = None
    # Set only for a new run of a trade whose workflow is gone (same workflow id and row).
    resume: Resume | None = None

    @model_validator(mode="after")
    def _also_needs_first(self) -> TradeInput:
        if self.also_close_first_workflow_ids and not self.close_first_workflow_id:
            raise ValueError("also_close_first_workflow_ids needs close_first_workflow_id")
        return self

    @property
    def predecessors(self) -> tuple[str, ...]:
        """Every trade a reverse closes before it enters, the newest first (none: not a
        reverse)."""
        if self.close_first_workflow_id is None:
            return ()
        return (self.close_first_workflow_id, *self.also_close_first_workflow_ids)

    @property
    def side(self) -> PositionSide:
        if self.intent in (Intent.OPEN_LONG, Intent.REVERSE_TO_LONG):
            return PositionSide.LONG
        if self.intent in (Intent.OPEN_SHORT, Intent.REVERSE_TO_SHORT):
            return PositionSide.SHORT
        raise ValueError(f"{self.intent} does not open a trade")


# --- result -------------------------------------------------------------------------------


class TradeResult(Frozen):
    trade_id: int
    status: TradeStatus
    filled_qty: Decimal
    closed_qty: Decimal
    realized_pnl: Decimal
    fees: Decimal
    error: str | None = None


def workflow_id_for(strategy_name: str, signal_id: int) -> str:
    """`trade-<strategy>-<accepted signal id>`: a redelivery maps to the same id
    (docs/design.md#dedupe-ordering-and-workflow-ids)."""
    return f"{workflow_id_prefix(strategy_name)}{signal_id}"


def workflow_id_prefix(strategy_name: str) -> str:
    """`workflow_id_for` without the signal id (the database completes it as it draws one)."""
    return f"trade-{strategy_name}-"
