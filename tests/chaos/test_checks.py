"""The fault runs' checks, on hand-made reads (tests/chaos/checks.py)."""

from __future__ import annotations

from decimal import Decimal

from tests.chaos.checks import (
    FINAL_STATUSES,
    ExchangeOrder,
    OrderRow,
    TradeRow,
    doubled_orders,
    stuck_trades,
    unnamed,
)

D = Decimal
ENTRY, EXIT = "TWAAAAE0", "TWAAAAX1"


def trade(status: str = "TRACKING", target: str | None = "0.01") -> TradeRow:
    return TradeRow(7, "trade-s-7", status, D(target) if target else None, D("0.01"), D(0))


def order(cid: str | None, filled: str, oid: str = "1") -> ExchangeOrder:
    return ExchangeOrder(oid, cid, "BTCUSDT", "FILLED", D(filled))


ROWS = [OrderRow(ENTRY, 7, "entry"), OrderRow(EXIT, 7, "exit")]


def test_one_order_per_client_id_within_the_target_is_not_doubled() -> None:
    assert doubled_orders([order(ENTRY, "0.01"), order(EXIT, "0.01", "2"),
                           order(None, "0.5", "3")], ROWS, [trade()]) == []


def test_a_second_order_under_one_client_id_is_doubled() -> None:
    [found] = doubled_orders([order(ENTRY, "0.005"), order(ENTRY, "0.005", "2")], ROWS,
                             [trade()])
    assert found == f"client id {ENTRY} has 2 exchange orders"


def test_entries_filled_beyond_the_target_are_doubled() -> None:
    second = "TWAAAAE1"
    [found] = doubled_orders([order(ENTRY, "0.01"), order(second, "0.01", "2")],
                             [*ROWS, OrderRow(second, 7, "entry")], [trade()])
    assert "filled 0.02 at the exchange, above its target 0.01" in found


def test_closes_beyond_the_entries_and_orders_nobody_sent_are_reported() -> None:
    found = doubled_orders([order(ENTRY, "0.01"), order(EXIT, "0.02", "2"),
                            order("TWZZZZE0", "0.01", "3")], ROWS, [trade()])
    assert len(found) == 2
    assert "has no order row" in found[0] and "closes filled 0.02" in found[1]


def test_a_trade_still_entering_is_stuck_and_once_ended_only_final_counts() -> None:
    assert stuck_trades([trade("TRACKING"), trade("CLOSED")]) == []
    assert len(stuck_trades([trade("ENTERING"), trade("PENDING")])) == 2
    assert len(stuck_trades([trade("TRACKING")], FINAL_STATUSES)) == 1


def test_a_difference_is_unnamed_until_an_open_incident_has_its_fingerprint() -> None:
    diffs = {"unowned_quantity:BTCUSDT:LONG": "…", "orphan_order:9": "…"}
    assert unnamed(diffs, ["orphan_order:9"]) == {"unowned_quantity:BTCUSDT:LONG": "…"}
    assert unnamed(diffs, diffs) == {}


def test_a_trade_recording_more_than_its_target_is_reported() -> None:
    over = TradeRow(7, "trade-s-7", "TRACKING", D("0.01"), D("0.02"), D(0))
    [found] = doubled_orders([order(ENTRY, "0.01")], ROWS, [over])
    assert "records 0.02 filled, above its target 0.01" in found
