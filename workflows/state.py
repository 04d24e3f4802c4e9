"""Everything one running trade knows, in one serializable object (`TradeMemory`), carried whole
across continue-as-new: a field added here can never be forgotten by a hand-written copy.

Pure pydantic, no I/O. Who writes what:
    inbox       TradeWorkflow's message handlers (workflows/trade.py), and a refused TP/SL asking
                its own trade to flatten (workflows/protection.py); the phases read it
    ledger      the answers of the activities (workflows/run.py applies them)
    protection  workflows/protection.py and the `set_protection` update
    venue       the entry's reads and each refresh (workflows/entry.py, workflows/run.py)
    state       what query `state` answers, refreshed from the rest (TradeRun.set); its trading
                state is the account watcher's `trading_state` signal's (workflows/trade.py)
The pair's rules are not here: a continued run reads them again, as they may have changed.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from trading.exits import ExitPlan
from trading.types import PositionMode, PositionSide, TradeStatus, TradingState
from workflows.ledger import TradeLedger
from workflows.messages import CancelRequest, CloseRequest


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Mutable(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- what query `state` answers -------------------------------------------------------------


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


class LevelView(Frozen):
    """One take-profit level as it stands (docs/design.md#exits)."""

    price: Decimal | None = None  # None: a percent not resolved yet (no average entry price)
    qty: Decimal = Decimal(0)
    filled_qty: Decimal = Decimal(0)
    status: str = "waiting"  # waiting | working | filled | cancelled


class TrailView(Frozen):
    """The trailing stop as it stands: active once the price reached its activation."""

    pct: Decimal
    active: bool = False
    best_price: Decimal | None = None  # the high-water mark (a long) or low-water mark (a short)
    stop: Decimal | None = None  # the stop the trail wants now


class ExitsView(Frozen):
    """The trade's exit plan as it stands: each level, what filled, the current stop, and the
    trail with its high-water mark."""

    levels: list[LevelView] = Field(default_factory=list)
    stop: Decimal | None = None
    trail: TrailView | None = None


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
    # The trading state that applies to the trade (docs/design.md#risk), as the account watcher
    # last said: the scope it comes from and who set it, why. Shown, never acted on: the claim
    # of an opening order and intake enforce the state.
    trading_state: TradingState = TradingState.ACTIVE
    trading_state_scope: str | None = None
    trading_state_reason: str | None = None
    # The exit plan (docs/design.md#exits); None: a single TP/SL, shown by `protection`.
    exits: ExitsView | None = None


# --- the memory: everything above and below, carried whole ----------------------------------


class Inbox(Mutable):
    """What interrupts the current phase, and whom to tell at the end."""

    cancel: CancelRequest | None = None  # cleared once acted upon
    close: CloseRequest | None = None  # an exit alert, or the first half of a reverse
    flatten: str | None = None  # the trade itself asks to close (why), e.g. its TP/SL was refused
    exchange_changed: bool = False  # the account watcher saw a change: re-read now
    # The trades this reverse closes that have ended, with the status each ended with.
    predecessors_ended: dict[str, TradeStatus] = Field(default_factory=dict)
    # Written by an earlier version (one predecessor) and read by none: a memory carried
    # from it still validates.
    predecessor_closed: bool = False
    predecessor_status: TradeStatus | None = None
    notify: list[str] = Field(default_factory=list)  # workflow ids waiting for this trade's end
    # Partial exits waiting their turn, oldest first (docs/design.md#exits): each runs once
    # no whole exit is pending; a whole exit supersedes them all.
    partials: list[CloseRequest] = Field(default_factory=list)

    def interrupted(self) -> bool:
        """A message the current phase must act on before waiting any longer."""
        return self.cancel is not None or self.close is not None or self.flatten is not None


class Protection(Mutable):
    """The TP/SL the trade wants (the order that carries it is in the ledger)."""

    tp: Decimal | None = None
    sl: Decimal | None = None
    override: bool = False  # set_protection replaced the alert's TP/SL
    disabled: bool = False  # refused, and the strategy says warn: track unprotected


class Venue(Mutable):
    """What the trade last saw at the exchange."""

    mode: PositionMode | None = None
    mark: Decimal | None = None
    position_qty: Decimal | None = None  # the trade's side of the position; None: flat or unread
    available: Decimal | None = None  # the account's available margin at the entry's read
    taker_fee_rate: Decimal | None = None  # the account's, from the entry's read


class Exits(Mutable):
    """The trade's exit plan as it stands (docs/design.md#exits): the input's, until an update
    replaces it, and what the trade tracks of it."""

    plan: ExitPlan | None = None
    # The trailing stop (workflows/trailing.py), durable so a restart or continue-as-new
    # neither loses the high-water mark nor moves the stop back or early.
    trail_active: bool = False  # the price reached the activation (it stays active)
    trail_best: Decimal | None = None  # the best price read since it became active
    trail_wanted: Decimal | None = None  # the stop the trail wants now (never looser)
    trail_stop: Decimal | None = None  # the stop last handed to the TP/SL (what targets() uses)
    trail_moved_at: datetime | None = None  # when trail_stop last changed
    # The ladder's orders, per level: every client id sent for it (recorded before the send,
    # so a lost answer is settled), and which levels have filled (a stop they moved stays).
    level_orders: list[list[str]] = Field(default_factory=list)
    levels_done: list[bool] = Field(default_factory=list)


class TradeMemory(Mutable):
    inbox: Inbox = Field(default_factory=Inbox)
    exits: Exits = Field(default_factory=Exits)
    ledger: TradeLedger
    protection: Protection = Field(default_factory=Protection)
    venue: Venue = Field(default_factory=Venue)
    state: TradeState
    placed_any: bool = False  # the first placement runs as a local activity
    final_status: TradeStatus = TradeStatus.CLOSED  # how tracking ends, once it ends
    exit_retry_at: datetime | None = None  # an exit that failed is tried again then
    # Since when the trade's TP/SL has been in neither of the exchange's lists without the
    # position ruling out that it fired (workflows/reconcile.py); None: not the case.
    tpsl_unknown_since: datetime | None = None
    runs: int = 1  # this run's number: continue-as-new adds one

    def next_run(self) -> TradeMemory:
        """What the next run starts from (continue-as-new)."""
        return self.model_copy(update={"runs": self.runs + 1})

    @model_validator(mode="before")
    @classmethod
    def _from_trade_carry(cls, data: Any) -> Any:
        """Accept the carry of a run started by an earlier version (`TradeCarry`: ledger, state,
        tp, sl, notify, protection_override, protection_disabled, runs), so a trade that
        continued as new across the upgrade resumes with everything it knew."""
        if not isinstance(data, dict) or "tp" not in data and "protection_override" not in data:
            return data
        state = data["state"]
        get = state.get if isinstance(state, dict) else lambda k: getattr(state, k)
        return {
            "inbox": {"notify": list(data.get("notify") or [])},
            "ledger": data["ledger"],
            "protection": {
                "tp": data.get("tp"), "sl": data.get("sl"),
                "override": data.get("protection_override", False),
                "disabled": data.get("protection_disabled", False),
            },
            "venue": {"mode": get("position_mode"), "mark": get("mark_price")},
            "state": state,
            "placed_any": True,
            "runs": data.get("runs", 1),
        }
