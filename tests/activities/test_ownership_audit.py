"""The ownership audit's pure parts (activities/incidents.py): which mismatches a round's reads
show, and how long one must last to become an incident."""

from __future__ import annotations

from decimal import Decimal

from activities.incidents import Settling, WorkingOrder, orphan_orders, quantity_mismatches
from exchange.models import Order
from trading.ids import client_order_id
from trading.types import IncidentKind, OrderStatus, OrderType, PositionSide, Side

BTC, ETH = "BTCUSDT", "ETHUSDT"
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT


def test_quantities_that_match_raise_nothing_and_the_others_say_which_way() -> None:
    positions = {(BTC, LONG): Decimal("0.0300"), (ETH, SHORT): Decimal("1"), (BTC, SHORT): Decimal("2")}
    owned = {(BTC, LONG): Decimal("0.03"), (ETH, SHORT): Decimal("1.5"), (ETH, LONG): Decimal("4")}
    found = {(m.symbol, m.side): m for m in quantity_mismatches(positions, owned)}
    assert set(found) == {(ETH, SHORT), (BTC, SHORT), (ETH, LONG)}  # BTC LONG balances exactly
    assert found[(BTC, SHORT)].kind is IncidentKind.UNOWNED_QUANTITY
    assert (found[(BTC, SHORT)].exchange_qty, found[(BTC, SHORT)].owned_qty) == (2, 0)
    assert found[(ETH, SHORT)].kind is IncidentKind.MISSING_QUANTITY
    assert found[(ETH, SHORT)].gap == Decimal("-0.5")
    assert found[(ETH, LONG)].kind is IncidentKind.MISSING_QUANTITY  # the exchange holds none
    assert found[(BTC, SHORT)].fingerprint == "unowned_quantity:BTCUSDT:SHORT"
    assert "2 is owned by no trade" in found[(BTC, SHORT)].detail


def _order(order_id: str, client_id: str | None) -> Order:
    return Order(order_id=order_id, client_id=client_id, symbol=BTC, side=Side.BUY,
                 order_type=OrderType.LIMIT, effect=None, qty=Decimal("0.02"),
                 filled_qty=Decimal("0.005"), price=Decimal("90000"), avg_price=None,
                 status=OrderStatus.PART_FILLED, reduce_only=False, fee=Decimal(0),
                 realized_pnl=Decimal(0), ctime_ms=None, mtime_ms=None)


def test_only_tradewire_orders_without_an_open_trade_are_orphans() -> None:
    live, ended, unknown = (client_order_id(f"trade-{n}", "E", 1) for n in ("a", "b", "c"))
    assert WorkingOrder.of(_order("9", "manual-order")) is None  # not ours: never checked
    assert WorkingOrder.of(_order("9", None)) is None
    ours = [w for o in (_order("1", live), _order("2", ended), _order("3", unknown))
            if (w := WorkingOrder.of(o)) is not None]
    found = orphan_orders(ours, {live: (1, "TRACKING"), ended: (2, "CLOSED")})
    assert [m.order_id for m in found] == ["2", "3"]
    assert all(m.kind is IncidentKind.ORPHAN_ORDER and m.side is None for m in found)
    assert found[0].exchange_qty == Decimal("0.015") and found[0].owned_qty == 0  # what rests
    assert "its trade #2 has ended (CLOSED)" in found[0].detail
    assert "no trade's order row has this client id" in found[1].detail
    assert "BUY LIMIT 0.015 @ 90000" in found[1].detail and unknown in found[1].detail


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_mismatch_settles_only_if_it_lasts_with_the_same_gap() -> None:
    clock = Clock()
    settling = Settling(3.0, clock)
    one = {m.fingerprint: m for m in quantity_mismatches({(BTC, LONG): Decimal(1)}, {})}
    two = {m.fingerprint: m for m in quantity_mismatches({(BTC, LONG): Decimal(2)}, {})}
    assert settling.settled(one) == {} and settling.pending == set(one)
    clock.now += 2.9
    assert settling.settled(one) == {}
    clock.now += 0.1
    [(m, first)] = settling.settled(one).values()
    assert m.exchange_qty == 1
    clock.now += 1
    assert settling.settled(two) == {}  # the gap moved (a fill in flight?): settles again
    clock.now += 3
    assert list(settling.settled(two)) == list(two)
    assert settling.settled({}) == {} and settling.pending == set()  # gone: forgotten
    clock.now += 10
    assert settling.settled(one) == {}  # back again: a new window
