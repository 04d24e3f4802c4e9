"""What goes in and out of each activity: one input model, one result model
(docs/design.md#one-input-model-one-result-model).

Pure pydantic, imported by the workflows (through `imports_passed_through`) and by the activity
classes. Nothing secret is ever a field: these values are written to Temporal's history.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from trading.exits import DEFAULT_TAKER_FEE_RATE
from trading.types import (
    Effect,
    Leg,
    MarginMode,
    OrderStatus,
    OrderType,
    PositionMode,
    PositionSide,
    Side,
    StopType,
    TradeSide,
)


class Model(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Failure(StrEnum):
    """The `type` of every failure the workflow tells apart: what an activity refuses for a
    reason of its own (activities/errors.py `refuse`), and the class names of the exchange's
    and the domain's errors that `translated()` passes on. The workflow branches on these
    members (workflows/policies.py), never on a string of its own."""

    # raised by the activities themselves
    ALERT_TOO_OLD = "AlertTooOld"
    SLIPPAGE_EXCEEDED = "SlippageExceeded"
    TRADE_ROW_MISSING = "TradeRowMissing"
    # The trade row is not this workflow's, or not from an accepted alert (a start that did
    # not come from the webhook): the workflow ends REFUSED, touching nothing.
    FOREIGN_START = "ForeignStart"
    ORDER_ROW_MISSING = "OrderRowMissing"
    PROTECTION_REFUSED = "ProtectionRefused"
    # The TP/SL names a position the exchange does not have (yet): nothing was created; the
    # trade reads its position again at its next check (never the strategy's refusal policy).
    POSITION_NOT_FOUND = "PositionNotFound"
    NOT_FOUND_YET = "NotFoundYet"  # retryable: the order is not visible at the exchange yet
    CANCEL_NOT_CONFIRMED = "CancelNotConfirmed"  # retryable
    ORDERS_IN_FLIGHT = "OrdersInFlight"  # retryable: an adoption waits for the rows to settle
    # The clock is further from the exchange's than TRADEWIRE_CLOCK_SKEW_MAX_MS: no new entry
    # is sent until it is fixed (activities/clock.py); exits and protection still go.
    CLOCK_SKEWED = "ClockSkewed"
    PRICE_UNKNOWN = "PriceUnknown"  # retryable: no average open price and no mark yet
    UNKNOWN_SYMBOL = "UnknownSymbol"  # also trading.errors.UnknownSymbol's name
    # exchange.errors classes
    RULE_REJECTED = "RuleRejected"
    # 20002: the position would pass its leverage's risk-limit tier (lower size or leverage)
    RISK_LIMIT_EXCEEDED = "RiskLimitExceeded"
    # trading.errors classes
    RULE_VIOLATION = "RuleViolation"
    INVALID_TICKER = "InvalidTicker"
    INVALID_SIZING = "InvalidSizing"
    INVALID_ORDER_REQUEST = "InvalidOrderRequest"
    OPPOSITE_TRADE_OPEN = "OppositeTradeOpen"
    RISK_REFUSED = "RiskRefused"  # a risk rail (trading/risk.py): nothing was sent
    PAIR_RULES_INVALID = "PairRulesInvalid"


# --- venue --------------------------------------------------------------------------------


class StartCheck(Model):
    """The trade a run is about to act for: checked against its row before anything else
    (activities/ownership.py); the calling workflow's id comes from Temporal, never from here."""

    trade_id: int
    symbol: str
    side: PositionSide


class VenueQuery(Model):
    trade_id: int
    symbol: str
    side: PositionSide
    # The alert's arrival: how old the reads answering it may be is measured from it
    # (activities/venue_reads.py); `fresh_account` when sizing by a share of the margin.
    not_before: datetime
    fresh_account: bool = False


class PositionView(Model):
    position_id: str
    side: PositionSide
    qty: Decimal
    avg_open_price: Decimal | None = None


class VenueSnapshot(Model):
    """What the entry needs to know before it sends anything."""

    position_mode: PositionMode
    available: Decimal
    leverage: int
    margin_mode: MarginMode
    mark_price: Decimal
    best_bid: Decimal | None
    best_ask: Decimal | None
    other_trade_sides: list[PositionSide] = Field(default_factory=list)  # open trades but ours
    # The account's taker fee rate (TRADEWIRE_TAKER_FEE_RATE): break-even stops, risk-% sizing.
    taker_fee_rate: Decimal = DEFAULT_TAKER_FEE_RATE
    # The account's equity (available + frozen + margin + unrealized PnL), what risk_pct sizes
    # by; None in the results of runs recorded before it was read.
    equity: Decimal | None = None


class SymbolConfigRequest(Model):
    symbol: str
    leverage: int | None = None
    margin_mode: MarginMode | None = None
    # The trade it is for: nothing is changed for a trade the trading states refuse to open.
    trade_id: int | None = None


class SymbolConfigResult(Model):
    leverage: int
    margin_mode: MarginMode
    note: str | None = None  # why a wanted change was not made


class BookQuery(Model):
    symbol: str


class BookTop(Model):
    best_bid: Decimal | None
    best_ask: Decimal | None
    mark_price: Decimal | None = None


# --- orders -------------------------------------------------------------------------------


class OrderRequest(Model):
    """One order to place, fully decided by the workflow (grid, sides, client id)."""

    trade_id: int
    client_id: str
    leg: Leg
    symbol: str
    side: Side  # BitUnix's `side` (hedge mode: the position's direction)
    fill_side: Side  # the direction it fills in (what the order row records)
    trade_side: TradeSide | None = None
    reduce_only: bool = False
    position_id: str | None = None
    order_type: OrderType
    effect: Effect | None = None
    qty: Decimal
    price: Decimal | None = None
    # Entries only: never send after `send_deadline` (the alert's max age), and re-check the
    # price against `slippage_anchor` before any late (re-)send.
    send_deadline: datetime | None = None
    slippage_anchor: Decimal | None = None
    max_slippage_bps: Decimal | None = None
    # Entries only, for the risk limits of the trade's first claim (activities/risk.py): the
    # whole entry's quantity, the leverage it uses and the available margin last read.
    target_qty: Decimal | None = None
    leverage: int | None = None
    available_margin: Decimal | None = None


class OrderRef(Model):
    trade_id: int
    client_id: str
    symbol: str
    order_id: str | None = None


class OrderSnapshot(Model):
    """An order as the exchange last showed it (also the `order` row after the activity)."""

    client_id: str
    order_id: str | None
    leg: Leg
    fill_side: Side
    order_type: OrderType
    qty: Decimal
    price: Decimal | None
    status: OrderStatus
    filled_qty: Decimal = Decimal(0)
    avg_price: Decimal | None = None
    fee: Decimal = Decimal(0)
    adopted: bool = False  # found at the exchange instead of sent by this attempt
    error: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal


class AdoptRequest(Model):
    """Take on quantity the exchange holds on one side of `symbol` that no open trade owns
    (an incident's; docs/design.md#incident-policies): at most `wanted`, never more than the
    position holds beyond what the open trades own at that moment."""

    trade_id: int
    client_id: str  # the adopted quantity's row (named by the trade's ledger, never sent)
    symbol: str
    side: PositionSide
    wanted: Decimal


class AdoptResult(Model):
    snapshot: OrderSnapshot | None  # the adopted quantity as a filled row of leg ADOPTED
    position_id: str | None = None
    reason: str = ""  # why nothing, or less than wanted, was adopted


class BooksRequest(Model):
    """A trade whose workflow is gone, to be resumed (docs/design.md#resuming-a-trade)."""

    trade_id: int
    symbol: str


class SettleRequest(Model):
    """Every order a trade claimed on `leg` but `known` (the client ids its ledger already
    holds terminal): each found out and confirmed terminal (a working one cancelled), before
    the trade may end FAILED or REFUSED (docs/design.md#late-sends)."""

    trade_id: int
    symbol: str
    leg: Leg
    known: list[str] = Field(default_factory=list)


class SettleResult(Model):
    orders: list[OrderSnapshot]


# --- protection ---------------------------------------------------------------------------


class ProtectionLevel(StrEnum):
    ORDER = "order"  # tpsl/place_order, sized to the trade's quantity
    POSITION = "position"  # tpsl/position/place_order: the whole position (one per position)


class ProtectionClaim(Model):
    """A TP/SL placement of the trade whose outcome is unknown (its retries ran out after a
    lost answer): the TP/SL it asked for may exist at the exchange, recorded by no row. What it
    asked for is how it is recognised: TP/SL orders carry no client id."""

    client_id: str  # its `order` row, SENDING until settled
    position_id: str
    level: ProtectionLevel
    qty: Decimal
    tp: Decimal | None = None
    sl: Decimal | None = None


class ProtectionRequest(Model):
    """Place (or adopt) one TP/SL order, or move/resize it when `order_id` is given. `earlier`:
    the trade's unsettled claims, each settled first (its TP/SL adopted for this request, or
    cancelled; its row settled), so the trade never has two live TP/SLs."""

    trade_id: int
    client_id: str  # our row key; TP/SL orders carry no client id at the exchange
    symbol: str
    position_side: PositionSide
    position_id: str
    level: ProtectionLevel
    qty: Decimal
    tp: Decimal | None = None
    sl: Decimal | None = None
    stop_type: StopType = StopType.MARK_PRICE
    order_id: str | None = None
    earlier: list[ProtectionClaim] = Field(default_factory=list)

    def claim(self) -> ProtectionClaim:
        """This placement as a claim, should its outcome stay unknown."""
        return ProtectionClaim(client_id=self.client_id, position_id=self.position_id,
                               level=self.level, qty=self.qty, tp=self.tp, sl=self.sl)


class ClaimsRequest(Model):
    """Settle a trade's unsettled TP/SL claims without placing anything: each one's TP/SL, if
    it exists, is cancelled (before an exit, and before the trade ends)."""

    trade_id: int
    symbol: str
    position_side: PositionSide
    claims: list[ProtectionClaim]


class ProtectionSnapshot(Model):
    client_id: str
    order_id: str
    level: ProtectionLevel
    qty: Decimal
    tp: Decimal | None
    sl: Decimal | None
    adopted: bool = False


class TradeBooks(Model):
    """What a trade's rows say it did, for the run that resumes it: every order but its TP/SL
    (as the ledger holds them), the live TP/SL that protects it at the exchange (None: none is
    pending), the highest sequence number its client ids used, and what it last wanted."""

    found: bool
    status: str | None = None
    orders: list[OrderSnapshot] = Field(default_factory=list)
    protection: ProtectionSnapshot | None = None
    seq: int = 0
    tp: Decimal | None = None
    sl: Decimal | None = None
    target_qty: Decimal | None = None
    leverage: int | None = None
    position_id: str | None = None  # the position its quantity is in, as last recorded
    last_seen_ms: int | None = None  # when its row was last written (closing fills after it)
    wanted_protection: bool = False  # it ever placed a TP/SL


class ProtectionCancelled(Model):
    """What a TP/SL cancel found: `was_pending` False when the TP/SL was gone already (it
    fired, or was cancelled): what it closed, if anything, is for the trade to find out."""

    ok: bool = True  # (the answer `Done` the earlier code gave: its histories replay)
    was_pending: bool = True


class ProtectionRef(Model):
    trade_id: int
    client_id: str
    symbol: str
    order_id: str
