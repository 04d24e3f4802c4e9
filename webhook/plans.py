"""What decide.py made of one delivery, for intake.py to carry out after the commit."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from webhook.queries import KeyHolder, OpenTradeRow
from workflows.contract import TradeInput
from workflows.messages import CloseRequest


class Refused(Exception):
    """The delivery is refused: `public` is the answer, `stored` the signal row's reason.
    `anonymous`: refused before its secret was checked (or because it was wrong), so the
    answer says nothing about the operator's alerts and the record is rate-limited."""

    def __init__(
        self,
        status: int,
        public: str,
        stored: str | None = None,
        headers: dict[str, str] | None = None,
        anonymous: bool = False,
    ) -> None:
        super().__init__(public)
        self.status = status
        self.public = public
        self.stored = stored or public
        self.headers = headers or {}
        self.anonymous = anonymous


@dataclass
class StartPlan:
    signal_id: int
    trade_id: int
    workflow_id: str
    input: TradeInput  # a reverse's input names every trade it closes first
    eager: bool
    # Recorded QUEUED: answered at once, its start queued behind the answer (a burst).
    queued: bool = False


@dataclass
class ClosePlan:
    signal_id: int
    targets: list[OpenTradeRow]
    request: CloseRequest
    note: str | None = None  # said in the answer's `reason` (a reverse cut to its close half)
    # A partial exit by base size: each target's share, by trade id (docs/design.md#exits).
    shares: dict[int, Decimal] = field(default_factory=dict)

    def request_for(self, trade: OpenTradeRow) -> CloseRequest:
        """What `trade` is told: the request, with the trade's share of a base size."""
        share = self.shares.get(trade.id)
        return self.request if share is None else self.request.model_copy(update={"qty": share})


@dataclass
class DuplicatePlan:
    signal_id: int
    holder: KeyHolder
    restart: StartPlan | None  # the holder's trade may never have been started


@dataclass
class Settled:
    """Nothing for Temporal to do: the answer is final."""

    status: int
    body: dict[str, Any]


Plan = StartPlan | ClosePlan | DuplicatePlan | Settled
