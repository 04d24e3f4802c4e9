"""What goes in and out of a trade workflow: its input, its messages, its state and its result.

Pydantic models, carried by the pydantic data converter (Decimal stays exact). Nothing secret is
ever a field here: these values are written to Temporal's history.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trading.types import (
    EntryType,
    Intent,
    MarginMode,
    PositionMode,
    PositionSide,
    StopType,
    TradeStatus,
)
from workflows.ledger import TradeLedger


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ChaseFallback(StrEnum):
    MARKET = "market"
    GIVE_UP = "give_up"


class OnProtectionRefused(StrEnum):
    FLATTEN = "flatten"
    WARN = "warn"


class Sizing(Frozen):
    """Exactly one way to size the entry (see trading.sizing)."""

    size: Decimal | None = None  # base units
    size_usdt: Decimal | None = None  # notional in the quote currency
    size_pct: Decimal | None = None  # percent of available margin committed as initial margin

    @model_validator(mode="after")
    def _exactly_one(self) -> Sizing:
        given = [n for n in ("size", "size_usdt", "size_pct") if getattr(self, n) is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of size, size_usdt, size_pct (got {given or 'none'})")
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
    alert_time: datetime | None = None
    received_at: datetime
    # A reverse: close this trade (its own quantity) and wait for it before entering.
    close_first_workflow_id: str | None = None
    # Separates installations (or a reset database whose ids start again) that share one
    # exchange account, so a client order id is never mistaken for an older one (trading.ids).
    client_id_namespace: str = ""
    # History length (events) after which a tracking trade continues as new.
    continue_as_new_after: int = 4000
    # Set only by the workflow itself when it continues as new.
    carry: TradeCarry | None = None

    @property
    def side(self) -> PositionSide:
        if self.intent in (Intent.OPEN_LONG, Intent.REVERSE_TO_LONG):
            return PositionSide.LONG
        if self.intent in (Intent.OPEN_SHORT, Intent.REVERSE_TO_SHORT):
            return PositionSide.SHORT
        raise ValueError(f"{self.intent} does not open a trade")


# --- messages ---------------------------------------------------------------------------


class CancelRequest(Frozen):
    """Signal `cancel`: stop the entry and cancel working orders; `flatten` also closes what
    filled. Without it, a trade with fills keeps its TP/SL and stays TRACKING."""

    flatten: bool = False


class CloseRequest(Frozen):
    """Signal `close` (an exit alert, or the first half of a reverse)."""

    reason: str = "exit alert"
    signal_id: int | None = None
    notify_workflow_id: str | None = None  # signalled `predecessor_closed` when this trade ends


class ProtectionUpdate(Frozen):
    """Update `set_protection`: new absolute TP and/or SL prices (None keeps the current one)."""

    tp: Decimal | None = None
    sl: Decimal | None = None


class PredecessorClosed(Frozen):
    """Signal `predecessor_closed`: the trade a reverse asked to close has ended."""

    workflow_id: str
    status: TradeStatus


class ExchangeChanged(Frozen):
    """Signal `exchange_changed` from the account watcher: this trade's orders or position
    changed at the exchange; re-read them now."""

    reason: str = ""


# --- state and result -------------------------------------------------------------------


class OpenOrderView(Frozen):
    client_id: str
    order_id: str | None
    leg: str
    side: str
    qty: Decimal
    price: Decimal | None


class ProtectionView(Frozen):
    tp: Decimal | None = None
    sl: Decimal | None = None
    qty: Decimal = Decimal(0)
    order_id: str | None = None
    level: str = "none"  # "order" | "position" | "none"


class TradeState(BaseModel):
    """What query `state` answers; mirrored in search attributes and the trade row."""

    model_config = ConfigDict(extra="forbid")

    trade_id: int
    status: TradeStatus = TradeStatus.PENDING
    phase: str = "starting"
    symbol: str
    side: PositionSide
    target_qty: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    avg_entry_price: Decimal | None = None
    closed_qty: Decimal = Decimal(0)
    avg_exit_price: Decimal | None = None
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    leverage: int | None = None
    chases: int = 0
    open_orders: list[OpenOrderView] = Field(default_factory=list)
    protection: ProtectionView = Field(default_factory=ProtectionView)
    warnings: list[str] = Field(default_factory=list)
    error: str | None = None
    position_mode: PositionMode | None = None
    mark_price: Decimal | None = None


class TradeCarry(BaseModel):
    """What a long-held trade carries across continue-as-new (docs/design.md#long-holds):
    its ledger (sequence number, orders, owned quantity, protection ids) and visible state."""

    model_config = ConfigDict(extra="forbid")

    ledger: TradeLedger
    state: TradeState
    tp: Decimal | None = None
    sl: Decimal | None = None
    notify: list[str] = Field(default_factory=list)
    protection_override: bool = False
    protection_disabled: bool = False
    runs: int = 1


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
