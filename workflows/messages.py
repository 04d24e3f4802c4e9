"""The messages a trade workflow takes, and their names: the workflow's handlers
(workflows/trade.py) and its clients (the webhook, the CLI through the API) use these, so a
name is declared once. The account watcher's `ExchangeChanged` is the activities' own
(activities/contract_tracking.py): activities never import workflows; its `CancelStop` and
`StateNotice` mirror `CancelRequest` and `TradingStateNotice` here."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from activities.contract_tracking import ExchangeChanged
from trading.exits import SlAfterTp, TakeProfit
from trading.types import StopType, TradeStatus, TradingState


class Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TradeMessages:
    """The workflow type and the names of its signals, update and query."""

    WORKFLOW = ExchangeChanged.WORKFLOW
    CANCEL = "cancel"
    CLOSE = "close"
    EXCHANGE_CHANGED = ExchangeChanged.SIGNAL
    PREDECESSOR_CLOSED = "predecessor_closed"
    SET_PROTECTION = "set_protection"
    SET_EXITS = "set_exits"
    STATE = "state"
    EXITS = "exits"
    TRADING_STATE = "trading_state"


class CancelRequest(Frozen):
    """Signal `cancel`: stop the entry and cancel working orders; `flatten` also closes what
    filled. Without it, a trade with fills keeps its TP/SL and stays TRACKING."""

    flatten: bool = False
    # Why, when it is not the operator's own cancel (a trading state: docs/design.md#risk):
    # shown in the trade's warnings.
    reason: str | None = None


class CloseRequest(Frozen):
    """Signal `close` (an exit alert, or the first half of a reverse)."""

    reason: str = "exit alert"
    signal_id: int | None = None
    notify_workflow_id: str | None = None  # signalled `predecessor_closed` when this trade ends


class ProtectionUpdate(Frozen):
    """Update `set_protection`: new absolute TP and/or SL prices (None keeps the current one)."""

    tp: Decimal | None = None
    sl: Decimal | None = None


class ExitsUpdate(Frozen):
    """Update `set_exits` (docs/design.md#exits): a trade's exits moved, field by field as in an
    alert; a field left out (None) keeps what the trade has. `remove` takes out the ladder
    (`tps`: back to one TP) or the trailing stop (`trail`). Checked by the update's validator
    (workflows/exits_update.py) before it is accepted, not here: a refusal then says why
    instead of failing to decode."""

    sl: Decimal | None = None
    tp: Decimal | None = None  # one TP in the TP/SL order, instead of a ladder
    tps: tuple[TakeProfit, ...] | None = None
    sl_after_tp: SlAfterTp | tuple[SlAfterTp, ...] | None = None
    trail_pct: Decimal | None = None
    trail_activation_pct: Decimal | None = None
    trail_activation_price: Decimal | None = None
    trail_price: StopType | None = None
    remove: tuple[str, ...] = ()  # "tps" | "trail"


class PredecessorClosed(Frozen):
    """Signal `predecessor_closed`: the trade a reverse asked to close has ended."""

    workflow_id: str
    status: TradeStatus


class TradingStateNotice(Frozen):
    """Signal `trading_state` (the account watcher, docs/design.md#risk): the trading state that
    applies to this trade now, the stricter of the account's and its strategy's, and the scope
    it comes from. Shown in the trade's state and details; ACTIVE clears them."""

    state: TradingState = TradingState.ACTIVE
    scope: str = "account"  # trading.risk.ACCOUNT, or strategy_scope(name)
    reason: str = ""  # who set it and why ("alice: end of day"); empty for ACTIVE
