"""What the tracking activities take and return: re-reading a trade, closes it did not send,
the trade row, the sub-second chase and the account watcher. Pure pydantic, like
activities/contract.py (nothing secret: these values go into Temporal's history)."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import ClassVar

from pydantic import Field

from activities.contract import Model, OrderRef, OrderSnapshot, PositionView
from trading.types import (
    Leg,
    PositionMode,
    PositionSide,
    Side,
    StopType,
    TradeSide,
    TradeStatus,
    TradingState,
)

# --- tracking -----------------------------------------------------------------------------


class RefreshRequest(Model):
    """Re-read what the trade has at the exchange."""

    trade_id: int
    symbol: str
    side: PositionSide
    orders: list[OrderRef] = Field(default_factory=list)  # its non-terminal orders
    protection_id: str | None = None
    position_id: str | None = None
    # 0: read the exchange after this check was scheduled (a signal woke the trade); more: a
    # read that many ms older, shared with other trades, will do (the trade's own timer).
    max_age_ms: int = 0


class PriceQuery(Model):
    """The price a trailing stop follows (workflows/trailing.py): the symbol's mark or last
    price, from a ticker read shared by every trade that accepts one `max_age_ms` old."""

    symbol: str
    stop_type: StopType
    max_age_ms: int


class PriceRead(Model):
    price: Decimal | None  # None: the exchange has no ticker for the symbol


class RefreshResult(Model):
    orders: list[OrderSnapshot] = Field(default_factory=list)
    position: PositionView | None  # the trade's side on this symbol; None: flat
    protection_pending: bool = False  # protection_id is still a pending TP/SL order
    mark_price: Decimal | None = None
    now_ms: int
    # The position holds this much more than all open trades on it own, with none of their
    # orders in flight: quantity no trade owns (None: none found).
    unowned_qty: Decimal | None = None
    # What the open trades on the position's side own by their order rows (None: no position
    # read). A read that shows less than this may lag the orders (workflows/reconcile.py).
    owned_qty: Decimal | None = None


class ExternalCloseRequest(Model):
    """Our quantity left the position without an order of ours (TP/SL fired, liquidation,
    manual close): find the exchange's closing fills on the position and record our share."""

    trade_id: int
    client_id: str  # row key for our share
    leg: Leg
    symbol: str
    side: PositionSide
    position_mode: PositionMode
    # None: the trade never saw its position (its entry's answer came after the position was
    # gone): the symbol's closing fills on its side are searched instead.
    position_id: str | None
    qty: Decimal  # how much of ours left
    since_ms: int
    # True: the fills are the evidence: record nothing unless closing fills that no trade
    # recorded yet are found (did our TP/SL fire, or was it only cancelled? did a close from
    # outside happen at all?), and at most their quantity. False: the quantity is gone for
    # sure; without fills, record it at `fallback_price` (the last known price) and say so.
    require_fills: bool = False
    fallback_price: Decimal | None = None
    protection_client_id: str | None = None  # this TP/SL fired: mark its row FILLED
    # Given: this TP/SL is no longer pending. Did it fire? Its own history says; if so, its
    # closing fills (since its trigger time) give what it closed, at most `qty`.
    protection_order_id: str | None = None
    # With `leg` TRIGGERED: the TP/SL prices. Closing fills that crossed neither mean the
    # position ended otherwise (liquidation, manual close): recorded as EXTERNAL instead.
    # With `protection_order_id`: the prices that TP/SL carries (its trigger prices).
    tp: Decimal | None = None
    sl: Decimal | None = None
    # With `protection_order_id`: the TP/SL has been in neither list for longer than the
    # trade waits (workflows/reconcile.py): decide now from the position (see
    # ExternalCloseResult.unknown) instead of answering "unknown" again.
    decide: bool = False
    # With `protection_order_id`: the row `client_id` holds an estimate of what that TP/SL
    # closed (recorded at its trigger price). Replace it by the close's fills once they are
    # listed; withdraw it if the TP/SL's history says it was cancelled, not fired.
    refine: bool = False


class ExternalCloseResult(Model):
    found: bool  # closing fills were found on the position
    snapshot: OrderSnapshot | None  # our share, as recorded; None when nothing was recorded
    # With `protection_order_id`: a second look found the TP/SL pending after all (the
    # check's list missed it). Nothing was recorded; it still protects the trade.
    still_pending: bool = False
    # With `protection_order_id`: the TP/SL is neither pending nor in its history (yet), and
    # the position does not rule out that it fired. Nothing was recorded; the trade keeps it as
    # its TP/SL, places no other, and looks again.
    unknown: bool = False
    # `snapshot` is an estimate (the TP/SL fired, no fill of its close is listed yet): the
    # trade asks again with `refine` until the fills replace it.
    estimated: bool = False


class TradeRecord(Model):
    """The trade row as the workflow sees it now."""

    trade_id: int
    status: TradeStatus
    target_qty: Decimal | None = None
    filled_qty: Decimal = Decimal(0)
    avg_entry_price: Decimal | None = None
    closed_qty: Decimal = Decimal(0)
    avg_exit_price: Decimal | None = None
    realized_pnl: Decimal = Decimal(0)
    fees: Decimal = Decimal(0)
    leverage: int | None = None
    tp_price: Decimal | None = None
    sl_price: Decimal | None = None
    warning: str | None = None
    error: str | None = None
    position_id: str | None = None  # None: not known yet (the row keeps what it had)


class TradeOutcomeQuery(Model):
    """Another trade's row, by its workflow id (a reverse whose predecessor is not running)."""

    workflow_id: str


class TradeOutcome(Model):
    """What that trade's own record says: its status and what it still owns (filled minus
    closed). `found` False: no row has this workflow id."""

    found: bool
    status: TradeStatus | None = None
    open_qty: Decimal = Decimal(0)

    @property
    def owns_nothing(self) -> bool:
        """The trade ended and owns no quantity: nothing of it is left to close."""
        return self.found and self.status is not None and self.status.is_final and self.open_qty == 0


class Done(Model):
    """An activity with nothing to answer."""

    ok: bool = True


# --- fast chase (sub-second intervals, inside one heartbeating activity) -------------------


class FastChaseRequest(Model):
    """A whole chase with a sub-second interval, run inside one heartbeating activity. Its
    orders use the sequence numbers [first_seq, first_seq + max_chases] the workflow reserved,
    so a retried attempt names (and finds) exactly the orders of the attempt before."""

    trade_id: int
    workflow_id: str
    client_id_namespace: str = ""
    symbol: str
    leg: Leg
    opening: bool
    side: Side
    fill_side: Side
    trade_side: TradeSide | None = None
    reduce_only: bool = False
    position_id: str | None = None
    target_qty: Decimal  # what this leg must fill, all its orders together
    already_filled: Decimal  # by this leg's orders placed before the chase
    first_seq: int
    interval_s: Decimal
    max_chases: int
    max_slippage_bps: Decimal
    anchor_price: Decimal | None = None
    qty_step: Decimal
    price_tick: Decimal
    min_qty: Decimal
    send_deadline: datetime | None = None
    # An entry's, for the risk limits of its first claim (activities/risk.py), as OrderRequest.
    leverage: int | None = None
    available_margin: Decimal | None = None


class FastChaseResult(Model):
    orders: list[OrderSnapshot]
    chases: int
    stop_reason: str  # trading.chase: filled | stopped | max_chases | slippage


class CollectRequest(Model):
    """The orders among `client_ids` that exist, each confirmed terminal (cancelled if it was
    still working): what a stopped fast chase leaves behind."""

    trade_id: int
    symbol: str
    client_ids: list[str]


class CollectResult(Model):
    orders: list[OrderSnapshot]


class WatcherInput(Model):
    interval_s: Decimal = Decimal(2)
    iterations_before_new_run: int = 100


class ExchangeChanged(Model):
    """What the account watcher sends a trade (signal `exchange_changed`): its orders or
    position changed at the exchange; re-read them now."""

    SIGNAL: ClassVar[str] = "exchange_changed"  # the trade workflow's handler takes this name
    # The workflow type it is sent to (the watcher lists the running ones by it).
    WORKFLOW: ClassVar[str] = "TradeWorkflow"

    reason: str = ""


class CancelStop(Model):
    """What the account watcher sends a trade a trading state must stop (signal `cancel`,
    docs/design.md#risk): the same fields as workflows.messages.CancelRequest, which activities
    cannot import (tests/activities/test_daily_loss.py holds the two together)."""

    SIGNAL: ClassVar[str] = "cancel"  # TradeMessages.CANCEL

    flatten: bool = False
    reason: str | None = None


class StateNotice(Model):
    """What the account watcher tells every live trade of the trading state that applies to it
    (signal `trading_state`, docs/design.md#risk): the same fields as
    workflows.messages.TradingStateNotice (tests/workflows/test_risk_notice.py holds the two
    together)."""

    SIGNAL: ClassVar[str] = "trading_state"  # TradeMessages.TRADING_STATE

    state: TradingState = TradingState.ACTIVE
    scope: str = "account"
    reason: str = ""
