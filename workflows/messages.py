"""The messages a trade workflow takes, and their names: the workflow's handlers
(workflows/trade.py) and its clients (the webhook, the CLI through the API) use these, so a
name is declared once. The account watcher's `ExchangeChanged` is the activities' own
(activities/contract_tracking.py): activities never import workflows; its `CancelStop` and
`StateNotice` mirror `CancelRequest` and `TradingStateNotice` here."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    model_serializer,
    model_validator,
)

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
    """Signal `close` (an exit alert, or the first half of a reverse). Without `qty` and `pct`
    (or with `pct` 100) it closes everything the trade owns; with one of them it is a partial
    exit (docs/design.md#exits): that base quantity, or that percent of what the trade owns
    when the exit runs, and the trade keeps the rest."""

    reason: str = "exit alert"
    signal_id: int | None = None
    notify_workflow_id: str | None = None  # signalled `predecessor_closed` when this trade ends
    qty: Decimal | None = Field(default=None, gt=0)
    pct: Decimal | None = Field(default=None, gt=0, le=100)

    @model_validator(mode="after")
    def _one_part(self) -> CloseRequest:
        if self.qty is not None and self.pct is not None:
            raise ValueError("a close gives at most one of qty and pct")
        return self

    @model_serializer(mode="wrap")
    def _whole_as_before(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        # A whole close is sent exactly as before partial exits existed, so a worker of the
        # earlier version (its CloseRequest forbids unknown fields) still takes it.
        data = handler(self)
        for name in ("qty", "pct"):
            if data.get(name) is None:
                data.pop(name, None)
        return data

    @property
    def partial(self) -> bool:
        """A part of the trade's quantity, not all of it."""
        return self.qty is not None or (self.pct is not None and self.pct < 100)


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
