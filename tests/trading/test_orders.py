from __future__ import annotations

import pytest

from trading.errors import InvalidOrderRequest, OppositeTradeOpen
from trading.orders import (
    OrderFields,
    PositionChange,
    changes_for_intent,
    check_one_way_entry,
    order_fields,
)
from trading.types import Intent, PositionMode, PositionSide, Side, TradeSide

LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
BUY, SELL = Side.BUY, Side.SELL
HEDGE, ONE_WAY = PositionMode.HEDGE, PositionMode.ONE_WAY
OPEN, CLOSE = TradeSide.OPEN, TradeSide.CLOSE


@pytest.mark.parametrize(
    ("side", "opening", "mode", "expected"),
    [
        (LONG, True, HEDGE, OrderFields(BUY, OPEN, False, None, BUY)),
        (SHORT, True, HEDGE, OrderFields(SELL, OPEN, False, None, SELL)),
        (LONG, False, HEDGE, OrderFields(BUY, CLOSE, False, "p1", SELL)),
        (SHORT, False, HEDGE, OrderFields(SELL, CLOSE, False, "p1", BUY)),
        (LONG, True, ONE_WAY, OrderFields(BUY, None, False, None, BUY)),
        (SHORT, True, ONE_WAY, OrderFields(SELL, None, False, None, SELL)),
        (LONG, False, ONE_WAY, OrderFields(SELL, None, True, None, SELL)),
        (SHORT, False, ONE_WAY, OrderFields(BUY, None, True, None, BUY)),
    ],
)
def test_table(
    side: PositionSide, opening: bool, mode: PositionMode, expected: OrderFields
) -> None:
    assert order_fields(PositionChange(side, opening), mode, position_id="p1") == expected


def test_fill_side_differs_from_side_only_on_hedge_closes() -> None:
    for side in PositionSide:
        for opening in (True, False):
            for mode in PositionMode:
                fields = order_fields(PositionChange(side, opening), mode, position_id="p")
                hedge_close = mode is HEDGE and not opening
                assert (fields.side != fields.fill_side) == hedge_close
                assert fields.fill_side is (side.entry_side if opening else side.exit_side)


def test_hedge_close_needs_the_position_id() -> None:
    for missing in (None, ""):
        with pytest.raises(InvalidOrderRequest, match="positionId"):
            order_fields(PositionChange(LONG, False), HEDGE, position_id=missing)


def test_enum_values_are_accepted_as_strings() -> None:
    fields = order_fields(PositionChange("SHORT", False), "ONE_WAY")  # type: ignore[arg-type]
    assert fields == OrderFields(BUY, None, True, None, BUY)
    with pytest.raises(ValueError):
        order_fields(PositionChange(LONG, True), "BOTH")  # type: ignore[arg-type]
    with pytest.raises(InvalidOrderRequest):
        PositionChange(LONG, 1)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("intent", "legs"),
    [
        (Intent.OPEN_LONG, [PositionChange(LONG, True)]),
        (Intent.OPEN_SHORT, [PositionChange(SHORT, True)]),
        (Intent.CLOSE_LONG, [PositionChange(LONG, False)]),
        (Intent.CLOSE_SHORT, [PositionChange(SHORT, False)]),
        (Intent.REVERSE_TO_LONG, [PositionChange(SHORT, False), PositionChange(LONG, True)]),
        (Intent.REVERSE_TO_SHORT, [PositionChange(LONG, False), PositionChange(SHORT, True)]),
    ],
)
def test_intent_legs_close_before_they_open(intent: Intent, legs: list[PositionChange]) -> None:
    assert list(changes_for_intent(intent)) == legs


def test_every_intent_has_legs() -> None:
    assert all(changes_for_intent(intent) for intent in Intent)


@pytest.mark.parametrize(
    ("mode", "entry", "open_sides", "refused"),
    [
        (ONE_WAY, LONG, [], False),
        (ONE_WAY, LONG, [LONG, LONG], False),
        (ONE_WAY, LONG, [SHORT], True),
        (ONE_WAY, SHORT, [SHORT, LONG], True),
        (HEDGE, LONG, [SHORT], False),
        (HEDGE, SHORT, [LONG, SHORT], False),
    ],
)
def test_one_way_refuses_an_opposite_entry(
    mode: PositionMode, entry: PositionSide, open_sides: list[PositionSide], refused: bool
) -> None:
    if not refused:
        check_one_way_entry(mode, symbol="BTCUSDT", entry=entry, open_trade_sides=open_sides)
        return
    with pytest.raises(OppositeTradeOpen) as caught:
        check_one_way_entry(mode, symbol="BTCUSDT", entry=entry, open_trade_sides=open_sides)
    assert "ONE_WAY" in str(caught.value) and "BTCUSDT" in str(caught.value)
    assert caught.value.wanted == entry.value
