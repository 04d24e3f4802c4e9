"""The words of the trading domain: one enum per concept, shared by the database, the API,
the workflow state and the exchange parser. Values are BitUnix's spelling where BitUnix has one.
"""

from __future__ import annotations

from enum import StrEnum


class Side(StrEnum):
    """The direction an order fills in (BitUnix's `side` field in one-way mode)."""

    BUY = "BUY"
    SELL = "SELL"

    @property
    def opposite(self) -> Side:
        return Side.SELL if self is Side.BUY else Side.BUY


class PositionSide(StrEnum):
    LONG = "LONG"
    SHORT = "SHORT"

    @property
    def entry_side(self) -> Side:
        """The fill direction that opens (or grows) a position of this side."""
        return Side.BUY if self is PositionSide.LONG else Side.SELL

    @property
    def exit_side(self) -> Side:
        """The fill direction that reduces a position of this side."""
        return self.entry_side.opposite


class OrderType(StrEnum):
    """What the exchange knows: BitUnix's `orderType`."""

    LIMIT = "LIMIT"
    MARKET = "MARKET"


class EntryType(StrEnum):
    """How a trade enters, as an alert or a strategy says it (`order_type`)."""

    MARKET = "market"
    LIMIT = "limit"
    CHASE = "chase"


class Effect(StrEnum):
    """BitUnix's time in force (`effect`)."""

    GTC = "GTC"
    IOC = "IOC"
    FOK = "FOK"
    POST_ONLY = "POST_ONLY"


class TradeSide(StrEnum):
    """BitUnix's `tradeSide`, meaningful in hedge mode."""

    OPEN = "OPEN"
    CLOSE = "CLOSE"


class PositionMode(StrEnum):
    ONE_WAY = "ONE_WAY"
    HEDGE = "HEDGE"


class MarginMode(StrEnum):
    ISOLATION = "ISOLATION"
    CROSS = "CROSS"


class StopType(StrEnum):
    """What a TP/SL trigger watches."""

    MARK_PRICE = "MARK_PRICE"
    LAST_PRICE = "LAST_PRICE"


class OrderStatus(StrEnum):
    """BitUnix's order statuses, plus SENDING: our row exists, the exchange has not confirmed."""

    SENDING = "SENDING"
    INIT = "INIT"
    NEW = "NEW"
    PART_FILLED = "PART_FILLED"
    FILLED = "FILLED"
    CANCELED = "CANCELED"
    PART_FILLED_CANCELED = "PART_FILLED_CANCELED"
    EXPIRED = "EXPIRED"
    SYSTEM_CANCELED = "SYSTEM_CANCELED"
    REJECTED = "REJECTED"

    @property
    def is_terminal(self) -> bool:
        return self in _TERMINAL_ORDER_STATUSES


_TERMINAL_ORDER_STATUSES = frozenset(
    {
        OrderStatus.FILLED,
        OrderStatus.CANCELED,
        OrderStatus.PART_FILLED_CANCELED,
        OrderStatus.EXPIRED,
        OrderStatus.SYSTEM_CANCELED,
        OrderStatus.REJECTED,
    }
)


class PairStatus(StrEnum):
    """BitUnix's `symbolStatus`."""

    OPEN = "OPEN"
    CANCEL_ONLY = "CANCEL_ONLY"
    STOP = "STOP"
    PREVIEW = "PREVIEW"


class TradeStatus(StrEnum):
    """The one trade status: database column, API, workflow query and `TradeStatus` search
    attribute. Once anything has filled a trade never ends FAILED."""

    PENDING = "PENDING"
    ENTERING = "ENTERING"
    TRACKING = "TRACKING"
    CLOSING = "CLOSING"
    CLOSED = "CLOSED"
    CANCELLED = "CANCELLED"
    FAILED = "FAILED"
    REFUSED = "REFUSED"

    @property
    def is_final(self) -> bool:
        return self in (
            TradeStatus.CLOSED,
            TradeStatus.CANCELLED,
            TradeStatus.FAILED,
            TradeStatus.REFUSED,
        )


# Trades that are open: recorded (PENDING, maybe not started yet) up to closing. The database,
# the watcher and intake's counts all use these two, so none can disagree on what is open.
OPEN_TRADE_STATUSES = tuple(s.value for s in (TradeStatus.PENDING, TradeStatus.ENTERING,
                                              TradeStatus.TRACKING, TradeStatus.CLOSING))
# ... of which those that hold quantity, or are about to (an entry claimed an order).
HOLDING_STATUSES = OPEN_TRADE_STATUSES[1:]


class Intent(StrEnum):
    """What an alert asks for, from action + market_position + prev_market_position."""

    OPEN_LONG = "OPEN_LONG"
    OPEN_SHORT = "OPEN_SHORT"
    CLOSE_LONG = "CLOSE_LONG"
    CLOSE_SHORT = "CLOSE_SHORT"
    REVERSE_TO_LONG = "REVERSE_TO_LONG"
    REVERSE_TO_SHORT = "REVERSE_TO_SHORT"


class SignalOutcome(StrEnum):
    """What became of one delivery to the webhook."""

    ACCEPTED = "ACCEPTED"
    DUPLICATE = "DUPLICATE"
    REFUSED = "REFUSED"
    NOT_STARTED = "NOT_STARTED"
    NOTHING_TO_CLOSE = "NOTHING_TO_CLOSE"
    # Recorded and answered 202 during a burst, its start queued behind the answer
    # (webhook/start_queue.py); ACCEPTED once Temporal took it. A queued alert whose process
    # died is started from its record by the outbox, like a NOT_STARTED one.
    QUEUED = "QUEUED"


class ChaseFallback(StrEnum):
    """What a chase that ran out of re-prices or slippage does with what it did not fill."""

    MARKET = "market"
    GIVE_UP = "give_up"


class OnProtectionRefused(StrEnum):
    """What a trade with fills does when the exchange refuses its TP/SL."""

    FLATTEN = "flatten"
    WARN = "warn"


class Leg(StrEnum):
    """What an order is for in its trade (the `order.leg` column)."""

    ENTRY = "entry"
    EXIT = "exit"
    FLATTEN = "flatten"
    PROTECTION = "protection"  # an order-level or position-level TP/SL order
    TRIGGERED = "triggered"  # the exchange's own close when our TP/SL fired
    EXTERNAL = "external"  # a close we did not send (liquidation, manual close)
    # A level of a take-profit ladder: a reduce-only limit order of the trade's own quantity
    # (docs/design.md#exits).
    TAKE_PROFIT = "take_profit"
    # Quantity the trade took on without an order: an incident's unowned quantity, adopted
    # (docs/design.md#incident-policies). Never sent; its row records what was taken and when.
    ADOPTED = "adopted"

    @property
    def letter(self) -> str:
        """The leg in the client order id (trading.ids)."""
        return _LETTERS[self]

    @property
    def closes(self) -> bool:
        return self in (Leg.EXIT, Leg.FLATTEN, Leg.TRIGGERED, Leg.EXTERNAL, Leg.TAKE_PROFIT)

    @property
    def opens(self) -> bool:
        """What the trade owns comes from these legs' fills (a TP/SL's row fills nothing)."""
        return self in (Leg.ENTRY, Leg.ADOPTED)


_LETTERS = {
    Leg.ENTRY: "E",
    Leg.EXIT: "X",
    Leg.FLATTEN: "F",
    Leg.PROTECTION: "P",
    Leg.TRIGGERED: "T",
    Leg.EXTERNAL: "Z",
    Leg.ADOPTED: "A",
    Leg.TAKE_PROFIT: "L",
}


class IncidentKind(StrEnum):
    """What the account watcher found out of line with what the open trades own
    (docs/design.md#the-ownership-invariant)."""

    UNOWNED_QUANTITY = "unowned_quantity"  # the exchange holds more than the open trades own
    MISSING_QUANTITY = "missing_quantity"  # the open trades own more than the exchange holds
    ORPHAN_ORDER = "orphan_order"  # a working order with a Tradewire client id and no live trade
    UNTRACKED_TRADE = "untracked_trade"  # an open trade whose workflow no longer runs
    # A daily loss limit was breached: the account or a strategy was latched (trading/risk.py).
    DAILY_LOSS = "daily_loss"


class IncidentStatus(StrEnum):
    OPEN = "open"  # the mismatch lasts and nobody has answered it
    RESOLVED = "resolved"  # the watcher saw it balanced again
    DISMISSED = "dismissed"  # an operator answered it (their note says why)


class IncidentAction(StrEnum):
    """An entry of an incident's `actions` list: who did what about it."""

    REPORT = "report"  # the watcher raised it
    RESOLVE = "resolve"  # the watcher saw the mismatch gone (or changed)
    DISMISS = "dismiss"  # an operator dismissed it
    ADOPT = "adopt"  # unowned quantity taken into a trade that protects and tracks it
    FLATTEN = "flatten"  # unowned quantity taken into a trade that closes it at once
    CANCEL = "cancel"  # an orphan order of ours (its trade ended) cancelled
    RESUME = "resume"  # an untracked trade given a new run of its workflow
    LATCH = "latch"  # a daily loss breach latched a trading state (docs/design.md#risk)
    NOTE = "note"  # what became of an answer (an attempt that ended unbooked; a policy giving up)


class IncidentPolicy(StrEnum):
    """What the account does about unowned quantity and orphan orders on its own
    (TRADEWIRE_INCIDENT_POLICY; docs/design.md#incident-policies). An operator can always
    adopt, flatten or dismiss by hand."""

    PROTECT = "protect"  # adopt it into a trade with a protective stop; wait for an exit
    FLATTEN = "flatten"  # adopt it into a trade that closes it reduce-only at once
    REPORT = "report"  # record the incident only


class TradingState(StrEnum):
    """What the account, or one strategy, may send (docs/design.md#risk). The stricter of the
    account's and the strategy's state applies to a trade."""

    ACTIVE = "ACTIVE"  # everything allowed
    REDUCE_ONLY = "REDUCE_ONLY"  # closes, exits, TP/SL and flattening only: nothing opens
    HALTED = "HALTED"  # nothing new is sent; working entries cancelled; TP/SL stay

    @property
    def strictness(self) -> int:
        return _STRICTNESS[self]

    @property
    def opens(self) -> bool:
        """Whether an opening order (an entry) may be sent."""
        return self is TradingState.ACTIVE

    @property
    def exits(self) -> bool:
        """Whether an exit alert may send its close (a flatten ordered by the operator always
        may)."""
        return self is not TradingState.HALTED


_STRICTNESS = {TradingState.ACTIVE: 0, TradingState.REDUCE_ONLY: 1, TradingState.HALTED: 2}


class NotifyReceiver(StrEnum):
    """A kind of notification receiver (docs/design.md#notifications)."""

    WEBHOOK = "webhook"
    TELEGRAM = "telegram"


class NotifyStatus(StrEnum):
    PENDING = "pending"  # waiting for its first or next attempt
    SENT = "sent"  # the receiver answered 2xx
    SKIPPED = "skipped"  # no receiver of its kind is configured for it
    FAILED = "failed"  # every attempt failed
    DROPPED = "dropped"  # the queue was over its bound: the oldest waiting are dropped


class NotifyEvent(StrEnum):
    TRADE_OPENED = "trade_opened"
    TRADE_CLOSED = "trade_closed"
    TRADE_REFUSED = "trade_refused"
    TRADE_FAILED = "trade_failed"
    TRADE_CANCELLED = "trade_cancelled"
    ALERT_REFUSED = "alert_refused"  # an authenticated alert refused at the door: no trade
    INCIDENT_RAISED = "incident_raised"
    INCIDENT_RESOLVED = "incident_resolved"
    RISK_STATE_CHANGED = "risk_state_changed"
    DAILY_SUMMARY = "daily_summary"
    TEST = "test"
