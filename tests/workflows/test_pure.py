"""Property tests of the pure pieces the workflows decide with: chase arithmetic, the trade's
ledger, TP/SL prices and level, and the watcher's change detection."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from activities.contract import OrderSnapshot, ProtectionLevel
from activities.records import OpenTrade
from activities.watcher import AccountView, changes, concerned, explain, orphans
from trading.chase import beyond_slippage, passive_price, remainder
from trading.types import Leg, OrderStatus, OrderType, PositionSide, Side
from workflows.ledger import TradeLedger
from workflows.protection import desired_level, pct_price

prices = st.decimals(min_value="0.0001", max_value="1000000", places=4)
qtys = st.decimals(min_value="0", max_value="1000", places=4)
steps = st.sampled_from([Decimal("0.0001"), Decimal("0.01"), Decimal(1), Decimal("0.5")])
sides = st.sampled_from([Side.BUY, Side.SELL])


@given(bid=prices, spread=prices, tick=steps, side=sides)
def test_passive_price_is_on_the_grid_and_never_crosses(bid, spread, tick, side) -> None:
    ask = bid + spread
    price = passive_price(bid, ask, side, tick)
    assert price is not None and price % tick == 0
    if side is Side.BUY:
        assert price <= bid  # a buy at or below the best bid rests
    else:
        assert price >= ask


@given(target=qtys, filled=qtys, step=steps, min_qty=qtys, opening=st.booleans())
def test_remainder_never_overfills(target, filled, step, min_qty, opening) -> None:
    left = remainder(target, filled, step=step, min_qty=min_qty, opening=opening)
    assert left >= 0 and left % step == 0
    assert filled + left <= max(target, filled)
    if opening and left:
        assert left >= min_qty


@given(anchor=prices, bps=st.decimals(min_value=0, max_value=1000, places=2), side=sides,
       worse=prices)
def test_slippage_bound_is_exact(anchor, bps, side, worse) -> None:
    price = anchor + worse if side is Side.BUY else anchor - worse
    assert beyond_slippage(price, anchor, bps, side) == (worse * 10_000 > anchor * bps)
    assert not beyond_slippage(anchor, anchor, bps, side)


def snap(cid: str, leg: Leg, filled: str, avg: str, fee: str = "0") -> OrderSnapshot:
    return OrderSnapshot(client_id=cid, order_id=cid, leg=leg, fill_side=Side.BUY,
                         order_type=OrderType.MARKET, qty=Decimal(filled), price=None,
                         status=OrderStatus.FILLED, filled_qty=Decimal(filled),
                         avg_price=Decimal(avg), fee=Decimal(fee))


@given(entries=st.lists(st.tuples(st.decimals("0.01", "5", places=2),
                                  st.decimals("90", "110", places=1)), min_size=1, max_size=4),
       exit_price=st.decimals("80", "120", places=1), side=st.sampled_from(list(PositionSide)))
def test_ledger_pnl_is_the_trades_own(entries, exit_price, side) -> None:
    led = TradeLedger(trade_id=1, workflow_id="w", symbol="X", side=side)
    for i, (qty, price) in enumerate(entries):
        led.apply(snap(f"E{i}", Leg.ENTRY, str(qty), str(price), "0.1"))
    total = sum(q for q, _ in entries)
    led.apply(snap("X", Leg.EXIT, str(total), str(exit_price), "0.2"))
    assert led.open_qty == 0 and led.closed_qty == total == led.filled_qty
    cost = sum(q * p for q, p in entries)
    gross = total * exit_price - cost
    assert led.realized_pnl == (gross if side is PositionSide.LONG else -gross)
    assert led.fees == Decimal("0.1") * len(entries) + Decimal("0.2")


def test_ledger_ids_never_repeat_and_reservations_skip_ahead() -> None:
    led = TradeLedger(trade_id=1, workflow_id="trade-x-1", symbol="X", side=PositionSide.LONG)
    ids = [led.next_client_id(Leg.ENTRY) for _ in range(3)]
    first = led.reserve(5)
    ids.append(led.next_client_id(Leg.EXIT))
    assert len(set(ids)) == 4 and first == 4 and led.seq == 9


@given(entry=prices, pct=st.decimals(min_value="0.01", max_value="50", places=2),
       side=st.sampled_from(list(PositionSide)))
def test_tp_above_and_sl_below_for_a_long(entry, pct, side) -> None:
    tp = pct_price(entry, pct, side, take_profit=True)
    sl = pct_price(entry, pct, side, take_profit=False)
    if side is PositionSide.LONG:
        assert sl < entry < tp
    else:
        assert tp < entry < sl


@given(own=qtys, other=qtys)
def test_position_level_only_while_the_trade_owns_everything(own, other) -> None:
    level = desired_level(own, own + other)
    assert (level is ProtectionLevel.POSITION) == (other == 0)


def test_watcher_finds_changed_orders_and_the_trades_on_a_vanished_position() -> None:
    long = ("BTCUSDT", PositionSide.LONG)
    before = AccountView(orders={"1": ("NEW", Decimal(0)), "2": ("NEW", Decimal(0))},
                         positions={long: ("p1", Decimal("0.01"))})
    now = AccountView(orders={"2": ("NEW", Decimal(0))}, positions={})
    orders, positions = changes(before, now)
    assert orders == {"1"} and positions == {long}
    trades = [OpenTrade("a", "BTCUSDT", PositionSide.LONG, True),
              OpenTrade("b", "ETHUSDT", PositionSide.LONG, True),
              OpenTrade("c", "BTCUSDT", PositionSide.SHORT, False)]
    # No fill of ours explains the position's end: it concerns every trade on it.
    assert concerned(explain(before.positions, now.positions, []), trades) == {"a"}
    # A position that opened and closed between two rounds leaves no difference; the trade
    # that holds quantity by its own record is signalled anyway.
    assert orphans(now, trades) == {"a", "b"}
    assert changes(now, now) == (set(), set())
