"""The messages a trade workflow takes, and their names: the workflow's handlers
(workflows/trade.py) and its clients (the webhook, the CLI through the API) use these, so a
name is declared once. The account watcher's `ExchangeChanged` is the activities' own
(activities/contract_tracking.py): activities never import workflows; its `CancelStop` and
`StateNotice` mirror `CancelRequest` and `TradingStateNotice` here."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from activities.contract_tracking import ExchangeChanged
from trading.types import TradeStatus, TradingState


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
    STATE = "state"
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
