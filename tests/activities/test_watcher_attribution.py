"""The account watcher's attribution of position changes (activities.watcher.explain): a move
its trades' own fills add up to concerns only them; anything else concerns every trade on the
position."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from activities.records import FillOwner, OpenTrade
from activities.watcher import SeenFill, concerned, explain, longest_prefix
from trading.types import PositionSide

BTC = "BTCUSDT"
LONG = (BTC, PositionSide.LONG)
TRADES = [OpenTrade(f"t{i}", BTC, PositionSide.LONG, True) for i in range(5)] + [
    OpenTrade("eth", "ETHUSDT", PositionSide.LONG, True),
    OpenTrade("short", BTC, PositionSide.SHORT, True),
]
qtys = st.decimals(min_value="0.001", max_value="10", places=3)


def fill(n: int, qty: Decimal, owner: str | None = "t0", *, opens: bool = True,
         ctime: int | None = None, symbol: str = BTC, recorded: bool = False) -> SeenFill:
    who = None if owner is None else FillOwner(owner, symbol, PositionSide.LONG, opens, True)
    return SeenFill(f"f{n}", ctime if ctime is not None else n, symbol, qty, who,
                    recorded=recorded)


@given(held=qtys, new=qtys, owner=st.sampled_from([t.workflow_id for t in TRADES[:5]]))
def test_a_new_entry_fill_concerns_only_its_owner(held: Decimal, new: Decimal, owner: str) -> None:
    before = {LONG: ("p1", held)}
    now = {LONG: ("p1", held + new)}
    verdict = explain(before, now, [fill(1, new, owner)])
    assert concerned(verdict, TRADES) == {owner}
    assert verdict.carry == ()


@given(held=qtys, gone=qtys)
def test_an_unexplained_decrease_concerns_every_trade_on_the_position(held: Decimal,
                                                                     gone: Decimal) -> None:
    before = {LONG: ("p1", held + gone)}
    now = {LONG: ("p1", held)}
    assert concerned(explain(before, now, []), TRADES) == {f"t{i}" for i in range(5)}


@given(held=qtys, gone=qtys)
def test_a_fill_without_a_known_order_concerns_every_trade_on_its_symbol(held: Decimal,
                                                                        gone: Decimal) -> None:
    before = {LONG: ("p1", held + gone)}
    now = {LONG: ("p1", held)}
    wanted = concerned(explain(before, now, [fill(1, gone, None)]), TRADES)
    assert wanted == {f"t{i}" for i in range(5)} | {"short"}


def test_a_vanished_or_replaced_position_concerns_every_trade_on_it() -> None:
    every = {f"t{i}" for i in range(5)}
    assert concerned(explain({LONG: ("p1", Decimal(1))}, {}, []), TRADES) == every
    replaced = explain({LONG: ("p1", Decimal(1))}, {LONG: ("p2", Decimal(1))}, [])
    assert concerned(replaced, TRADES) == every


def test_the_last_trade_closing_its_own_quantity_concerns_only_it() -> None:
    verdict = explain({LONG: ("p1", Decimal(2))}, {}, [fill(1, Decimal(2), "t3", opens=False)])
    assert concerned(verdict, TRADES) == {"t3"}


def test_no_change_concerns_nobody() -> None:
    view = {LONG: ("p1", Decimal(1)), ("ETHUSDT", PositionSide.LONG): ("p2", Decimal(3))}
    verdict = explain(view, dict(view), [])
    assert concerned(verdict, TRADES) == set() and verdict.carry == ()


@given(held=qtys, shown=qtys, later=qtys)
def test_a_fill_newer_than_the_positions_read_is_carried_once(held: Decimal, shown: Decimal,
                                                              later: Decimal) -> None:
    """Fills are read after positions: one that is not in the read yet waits for the next
    round; if it still does not show then, the position moved otherwise."""
    before, now = {LONG: ("p1", held)}, {LONG: ("p1", held + shown)}
    first = explain(before, now, [fill(1, shown, "t1"), fill(2, later, "t2")])
    assert concerned(first, TRADES) == {"t1", "t2"}
    assert [f.fill_id for f in first.carry] == ["f2"]
    then = {LONG: ("p1", held + shown + later)}
    assert concerned(explain(now, then, [], first.carry), TRADES) == set()
    stuck = explain(now, dict(now), [], first.carry)
    assert concerned(stuck, TRADES) == {f"t{i}" for i in range(5)} and stuck.carry == ()


@given(st.lists(st.tuples(qtys, st.booleans()), max_size=6), st.data())
def test_longest_prefix_adds_up_to_the_move(parts: list[tuple[Decimal, bool]],
                                            data: st.DataObject) -> None:
    fills = [fill(n, q, opens=o) for n, (q, o) in enumerate(parts)]
    k = data.draw(st.integers(min_value=0, max_value=len(fills)))
    delta = sum((f.signed_qty for f in fills[:k]), Decimal(0))
    found = longest_prefix(fills, delta)
    assert found is not None and found >= k
    assert sum((f.signed_qty for f in fills[:found]), Decimal(0)) == delta


def test_the_one_other_holder_of_a_position_hears_of_a_join_or_a_leave() -> None:
    """A trade alone on a position protects it with a position-level TP/SL; when another trade
    joins (or the others leave) it must hear of it, to change the TP/SL's level."""
    alone = [OpenTrade("a", BTC, PositionSide.LONG, True),
             OpenTrade("b", BTC, PositionSide.LONG, False)]  # entering, nothing recorded yet
    joined = explain({LONG: ("p1", Decimal(1))}, {LONG: ("p1", Decimal(3))},
                     [fill(1, Decimal(2), "b")])
    assert concerned(joined, alone) == {"a", "b"}
    pair = [OpenTrade("a", BTC, PositionSide.LONG, True),
            OpenTrade("b", BTC, PositionSide.LONG, True)]
    left = explain({LONG: ("p1", Decimal(3))}, {LONG: ("p1", Decimal(1))},
                   [fill(1, Decimal(2), "b", opens=False)])
    assert concerned(left, pair) == {"a", "b"}
    many = [*pair, OpenTrade("c", BTC, PositionSide.LONG, True)]
    assert concerned(left, many) == {"b"}


@given(held=qtys, new=qtys, owner=st.sampled_from([t.workflow_id for t in TRADES[:5]]))
def test_a_fill_its_trade_recorded_alone_concerns_nobody(held: Decimal, new: Decimal,
                                                        owner: str) -> None:
    """A market entry's fill, which its placement recorded: no news to its trade (a signal
    would make it read the exchange again), nor to the four others on the position."""
    before = {LONG: ("p1", held)}
    now = {LONG: ("p1", held + new)}
    assert concerned(explain(before, now, [fill(1, new, owner, recorded=True)]), TRADES) == set()


@given(a=qtys, b=qtys)
def test_recorded_fills_of_two_trades_on_one_position_concern_both(a: Decimal, b: Decimal) -> None:
    """Two trades' fills moved the position in one round: each knows its own, not the other's
    (its TP/SL may have to change level), so both are told."""
    before = {LONG: ("p1", Decimal(1))}
    now = {LONG: ("p1", Decimal(1) + a + b)}
    fills = [fill(1, a, "t0", recorded=True), fill(2, b, "t1", recorded=True)]
    assert concerned(explain(before, now, fills), TRADES) == {"t0", "t1"}


def test_a_recorded_fill_still_tells_the_one_other_holder() -> None:
    two = [OpenTrade("a", BTC, PositionSide.LONG, True), OpenTrade("b", BTC, PositionSide.LONG, True)]
    verdict = explain({LONG: ("p1", Decimal(1))}, {LONG: ("p1", Decimal(2))},
                      [fill(1, Decimal(1), "b", recorded=True)])
    assert concerned(verdict, two) == {"a"}
