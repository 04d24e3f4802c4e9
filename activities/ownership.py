"""Whether a workflow run may act for a trade (security review D2: Temporal is not a back door).

Anyone who reaches Temporal can start `TradeWorkflow` with any input: a forged one, or a genuine
trade's input copied from its history and started under another workflow id. The input is
therefore never trusted to say whose trade it is. Before anything is sent, the trade's row must
exist, name the calling workflow's id (which Temporal gives the activity: `activity.info()`),
come from an accepted alert (or an incident's adoption), not have ended, and be for the input's
symbol and side. The check is pure; `Records` reads the row (activities/records.py).
"""

from __future__ import annotations

from dataclasses import dataclass

from trading.types import PositionSide, SignalOutcome, TradeStatus

# An alert the webhook authenticated and accepted. NOT_STARTED is one too: its start was not
# confirmed (Temporal's answer was lost), and a workflow may be running for it all the same.
ACCEPTED_ALERT = frozenset({SignalOutcome.ACCEPTED.value, SignalOutcome.NOT_STARTED.value,
                            SignalOutcome.QUEUED.value})


@dataclass(frozen=True, slots=True)
class TradeOrigin:
    """What the trade's row says about who may act for it."""

    trade_id: int
    workflow_id: str
    symbol: str
    side: str
    status: str
    signal_id: int | None
    signal_outcome: str | None  # the alert's outcome (None: no alert)
    adopted: bool = False  # an incident's adopt/flatten action names this trade and workflow


def refusal(origin: TradeOrigin | None, *, trade_id: int, workflow_id: str, symbol: str,
            side: PositionSide) -> str | None:
    """Why the run of `workflow_id` must not act for trade #`trade_id`; None when it may."""
    if origin is None:
        return (f"trade #{trade_id} does not exist: the webhook records every trade before it "
                "starts its workflow; nothing sent")
    if origin.workflow_id != workflow_id:
        return (f"trade #{trade_id} belongs to workflow {origin.workflow_id}, not "
                f"{workflow_id}: nothing sent")
    if origin.signal_id is not None and origin.signal_outcome not in ACCEPTED_ALERT:
        return (f"no accepted alert for trade #{trade_id} (signal #{origin.signal_id} is "
                f"{origin.signal_outcome}): nothing sent")
    if origin.signal_id is None and not origin.adopted:
        return (f"no accepted alert for trade #{trade_id}: it has no alert and no incident "
                "adopts it; nothing sent")
    if TradeStatus(origin.status).is_final:
        return f"trade #{trade_id} ({workflow_id}) has ended ({origin.status}): nothing sent"
    if (origin.symbol, origin.side) != (symbol, side.value):
        return (f"trade #{trade_id} is {origin.symbol} {origin.side}, not {symbol} "
                f"{side.value}: nothing sent")
    return None
