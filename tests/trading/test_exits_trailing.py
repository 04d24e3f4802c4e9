"""The trailing stop's pure functions (trading/exits.py, `# --- trailing stop ---`): whatever the
price path, the stop never moves against the trade, it starts only at its activation, it stays
`pct` behind the best price (on the tick, on the safe side), and the moves a trade sends are
each worth at least a step."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from tests.trading.factories import btc, doge
from trading.exits import (
    Trailing,
    TrailPoint,
    stop_crossed,
    tighter,
    trail_activated,
    trail_advance,
    trail_min_step,
    trail_stop,
    trail_worth_moving,
)
from trading.types import PositionSide

D = Decimal
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
sides = st.sampled_from([LONG, SHORT])
pcts = st.decimals(min_value=D("0.1"), max_value=D("20"), places=2)
prices = st.decimals(min_value=D("1000"), max_value=D("200000"), places=1)
paths = st.lists(prices, min_size=1, max_size=60)


def better_or_equal(side: PositionSide, a: Decimal, b: Decimal) -> bool:
    return a >= b if side is LONG else a <= b


def run_path(trail: Trailing, side: PositionSide, entry: Decimal, path: list[Decimal]):
    """What the workflow does with each read: advance, and send when worth a move."""
    rules, point, sent, sents, points = btc(), TrailPoint(), None, [], []
    for price in path:
        point = trail_advance(rules, trail, side, entry, point, price)
        points.append(point)
        if point.wanted is not None and trail_worth_moving(
                side, sent, point.wanted, trail_min_step(rules, trail, point.best)):
            sent = point.wanted
            sents.append(sent)
    return points, sents


@settings(max_examples=300)
@given(side=sides, pct=pcts, entry=prices, path=paths,
       activation=st.none() | st.decimals(min_value=D("0.1"), max_value=D("10"), places=1))
def test_the_stop_never_moves_against_the_trade(side, pct, entry, path, activation) -> None:
    trail = Trailing(pct=pct, activation_pct=activation)
    points, sents = run_path(trail, side, entry, path)
    wanted = [p.wanted for p in points if p.wanted is not None]
    for earlier, later in zip(wanted, wanted[1:], strict=False):
        assert better_or_equal(side, later, earlier)
    for earlier, later in zip(sents, sents[1:], strict=False):
        assert better_or_equal(side, later, earlier) and later != earlier
    bests = [p.best for p in points if p.best is not None]
    for earlier, later in zip(bests, bests[1:], strict=False):
        assert better_or_equal(side, later, earlier)


@settings(max_examples=300)
@given(side=sides, pct=pcts, path=paths)
def test_the_stop_is_pct_behind_the_best_price_on_the_tick(side, pct, path) -> None:
    rules = btc()
    points, _ = run_path(Trailing(pct=pct), side, path[0], path)
    for p in points:
        assert p.active and p.best is not None and p.wanted is not None
        assert p.best == (max(path[:points.index(p) + 1]) if side is LONG
                          else min(path[:points.index(p) + 1]))
        raw = p.best * (100 - pct if side is LONG else 100 + pct) / 100
        assert p.wanted % rules.price_tick == 0
        # The safe side: never looser than asked, and less than a tick tighter.
        assert better_or_equal(side, p.wanted, raw) and abs(p.wanted - raw) < rules.price_tick


@given(side=sides, pct=pcts, path=paths)
def test_the_moves_sent_are_each_worth_a_step(side, pct, path) -> None:
    rules, trail = btc(), Trailing(pct=pct)
    points, sents = run_path(trail, side, path[0], path)
    for earlier, later in zip(sents, sents[1:], strict=False):
        assert abs(later - earlier) >= rules.price_tick
        assert abs(later - earlier) >= trail_min_step(rules, trail, earlier) * D("0.9")
    # However the price wanders, moves are bounded by the distance it ran in the trade's favour.
    if sents:
        run = abs(sents[-1] - sents[0])
        assert len(sents) - 1 <= run / trail_min_step(rules, trail, min(path)) + 1


def test_activation_by_percent_and_by_price() -> None:
    trail = Trailing(pct=D("1"), activation_pct=D("2"))
    assert not trail_activated(trail, LONG, D("100"), D("101.9"))
    assert trail_activated(trail, LONG, D("100"), D("102"))
    assert not trail_activated(trail, SHORT, D("100"), D("98.1"))
    assert trail_activated(trail, SHORT, D("100"), D("98"))
    assert not trail_activated(trail, LONG, None, D("1000"))  # no entry price: nothing to measure
    at_price = Trailing(pct=D("1"), activation_price=D("105"))
    assert not trail_activated(at_price, LONG, D("100"), D("104.9"))
    assert trail_activated(at_price, LONG, D("100"), D("105"))
    assert trail_activated(at_price, SHORT, D("100"), D("105"))  # a short's at or below
    assert not trail_activated(Trailing(pct=D("1"), activation_price=D("95")), SHORT, D("100"),
                               D("96"))
    assert trail_activated(Trailing(pct=D("1")), LONG, None, D("1"))  # none: at once


def test_a_trail_before_its_activation_wants_nothing_and_keeps_its_best_after() -> None:
    rules, trail = btc(), Trailing(pct=D("1"), activation_pct=D("2"))
    point = trail_advance(rules, trail, LONG, D("100000"), TrailPoint(), D("101000"))
    assert point == TrailPoint()
    point = trail_advance(rules, trail, LONG, D("100000"), point, D("102000"))
    assert point == TrailPoint(active=True, best=D("102000"), wanted=D("100980"))
    point = trail_advance(rules, trail, LONG, D("100000"), point, D("100500"))  # a dip: stays
    assert point == TrailPoint(active=True, best=D("102000"), wanted=D("100980"))


def test_stop_on_the_tick_of_a_low_priced_pair() -> None:
    # DOGE: a 7-decimal tick; a short's stop rounded down (tighter), a long's up.
    assert trail_stop(doge(), Trailing(pct=D("3")), LONG, D("0.1234567")) == D("0.1197530")
    assert trail_stop(doge(), Trailing(pct=D("3")), SHORT, D("0.1234567")) == D("0.1271604")


def test_min_step_is_a_tenth_of_the_distance_or_a_tick() -> None:
    assert trail_min_step(btc(), Trailing(pct=D("1")), D("100000")) == D("100")
    assert trail_min_step(btc(), Trailing(pct=D("0.1")), D("50")) == D("0.1")  # the tick


def test_worth_moving_and_crossed_and_tighter() -> None:
    assert trail_worth_moving(LONG, None, D("99"), D("1"))
    assert trail_worth_moving(LONG, D("98"), D("99"), D("1"))
    assert not trail_worth_moving(LONG, D("98.5"), D("99"), D("1"))
    assert not trail_worth_moving(LONG, D("100"), D("99"), D("1"))  # never back
    assert trail_worth_moving(SHORT, D("101"), D("100"), D("1"))
    assert not trail_worth_moving(SHORT, D("100"), D("101"), D("1"))
    assert stop_crossed(LONG, D("99"), D("99")) and not stop_crossed(LONG, D("99.1"), D("99"))
    assert stop_crossed(SHORT, D("101"), D("101")) and not stop_crossed(SHORT, D("100.9"), D("101"))
    assert tighter(LONG, D("90"), D("95")) == D("95") and tighter(SHORT, D("90"), D("95")) == D("90")
    assert tighter(LONG, None, D("95")) == D("95") and tighter(LONG, D("90"), None) == D("90")
    assert tighter(LONG, None, None) is None
