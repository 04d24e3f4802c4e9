"""Who may act for a trade (activities/ownership.py): the pure check behind every start, each
reason by name. The workflows that use it run in tests/workflows/test_foreign_start.py."""

from __future__ import annotations

from dataclasses import replace

import pytest

from activities.ownership import TradeOrigin, refusal
from trading.types import PositionSide

WID = "trade-demo-40"
GENUINE = TradeOrigin(trade_id=12, workflow_id=WID, symbol="BTCUSDT", side="LONG",
                      status="PENDING", signal_id=40, signal_outcome="ACCEPTED")
ADOPTION = TradeOrigin(trade_id=13, workflow_id="adopt-4-1-abcdef12", symbol="BTCUSDT",
                       side="SHORT", status="PENDING", signal_id=None, signal_outcome=None,
                       adopted=True)


def check(origin: TradeOrigin | None, workflow_id: str = WID, trade_id: int = 12,
          symbol: str = "BTCUSDT", side: PositionSide = PositionSide.LONG) -> str | None:
    return refusal(origin, trade_id=trade_id, workflow_id=workflow_id, symbol=symbol, side=side)


@pytest.mark.parametrize("origin", [
    GENUINE,
    replace(GENUINE, signal_outcome="NOT_STARTED"),  # accepted; Temporal's answer was lost
    replace(GENUINE, status="TRACKING"),  # a resumed run, or a continued one
])
def test_the_rows_own_workflow_acts_for_an_accepted_alert(origin: TradeOrigin) -> None:
    assert check(origin) is None


def test_an_adoption_acts_when_an_incident_names_it() -> None:
    assert check(ADOPTION, ADOPTION.workflow_id, 13, side=PositionSide.SHORT) is None
    assert check(replace(ADOPTION, adopted=False), ADOPTION.workflow_id, 13,
                 side=PositionSide.SHORT) == (
        "no accepted alert for trade #13: it has no alert and no incident adopts it; "
        "nothing sent")


def test_each_refusal_names_what_is_wrong() -> None:
    assert check(None) == ("trade #12 does not exist: the webhook records every trade before "
                           "it starts its workflow; nothing sent")
    assert check(GENUINE, "attacker-1") == (
        "trade #12 belongs to workflow trade-demo-40, not attacker-1: nothing sent")
    assert check(replace(GENUINE, signal_outcome="REFUSED")) == (
        "no accepted alert for trade #12 (signal #40 is REFUSED): nothing sent")
    assert check(replace(GENUINE, status="REFUSED")) == (
        "trade #12 (trade-demo-40) has ended (REFUSED): nothing sent")
    assert check(GENUINE, symbol="ETHUSDT") == (
        "trade #12 is BTCUSDT LONG, not ETHUSDT LONG: nothing sent")
    assert check(GENUINE, side=PositionSide.SHORT) == (
        "trade #12 is BTCUSDT LONG, not BTCUSDT SHORT: nothing sent")
