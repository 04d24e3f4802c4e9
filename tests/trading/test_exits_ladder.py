"""The take-profit ladder's pure functions (trading/exits.py): level sizes, the working orders'
quantities, level prices, break-even and the stop after the filled levels."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from trading.exits import (
    SlAfterTp,
    TakeProfit,
    breakeven,
    ladder_sizes,
    level_orders,
    level_price,
    stop_after_levels,
)

D = Decimal
STEP, MIN = D("0.0001"), D("0.0001")
ZERO = D(0)


def tp(pct: str, qty_pct: str | None = None, after: SlAfterTp = SlAfterTp.NONE) -> TakeProfit:
    return TakeProfit(pct=D(pct), qty_pct=D(qty_pct) if qty_pct else None, sl_after=after)


def test_the_issue_ladder_splits_50_30_and_the_rest() -> None:
    levels = (tp("1", "50"), tp("2", "30"), tp("4"))
    assert ladder_sizes(D("0.0100"), levels, STEP, MIN) == (D("0.0050"), D("0.0030"), D("0.0020"))
    # Conformed down to the step; the level without a share takes the remainder.
    assert ladder_sizes(D("0.0007"), levels, STEP, MIN) == (D("0.0003"), D("0.0002"), D("0.0002"))


def test_levels_without_a_share_split_the_rest_equally_the_last_takes_the_remainder() -> None:
    levels = (tp("1"), tp("2"), tp("3"))
    assert ladder_sizes(D("0.0010"), levels, STEP, MIN) == (D("0.0003"), D("0.0003"), D("0.0004"))


def test_shares_under_100_leave_a_runner_and_100_leaves_nothing() -> None:
    runner = (tp("1", "25"), tp("2", "25"))
    assert ladder_sizes(D("0.0010"), runner, STEP, MIN) == (D("0.0002"), D("0.0002"))
    whole = (tp("1", "33"), tp("2", "67"))
    assert sum(ladder_sizes(D("0.0010"), whole, STEP, MIN)) == D("0.0010")


def test_a_level_below_the_minimum_merges_into_the_next_and_the_last_into_the_previous() -> None:
    levels = (tp("1", "10"), tp("2", "40"), tp("3"))
    assert ladder_sizes(D("0.010"), levels, D("0.001"), D("0.002")) == (D(0), D("0.005"), D("0.005"))
    tail = (tp("1", "90"), tp("2"))
    assert ladder_sizes(D("0.010"), tail, D("0.001"), D("0.002")) == (D("0.010"), D(0))


levels_st = st.lists(
    st.builds(lambda pct, share: TakeProfit(pct=D(pct), qty_pct=D(share) if share else None),
              st.integers(1, 50), st.one_of(st.none(), st.integers(1, 40))),
    min_size=1, max_size=6,
).filter(lambda ls: sum(t.qty_pct or 0 for t in ls) <= 100)


@given(levels_st, st.integers(0, 100_000), st.sampled_from([D("0.0001"), D("0.001"), D("1")]),
       st.integers(1, 20))
def test_sizes_are_on_the_step_above_the_minimum_and_never_more_than_filled(
    levels: list[TakeProfit], filled_steps: int, step: Decimal, min_steps: int,
) -> None:
    filled, min_qty = step * filled_steps, step * min_steps
    sizes = ladder_sizes(filled, tuple(levels), step, min_qty)
    assert len(sizes) == len(levels)
    assert sum(sizes) <= filled
    for size in sizes:
        assert size == 0 or (size >= min_qty and size % step == 0)
    if any(t.qty_pct is None for t in levels) and filled >= min_qty:
        assert sum(sizes) == filled  # a level without a share takes the remainder: no runner


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 60)), min_size=1, max_size=6),
       st.integers(0, 200), st.integers(1, 5))
def test_working_orders_never_hold_more_than_the_trade_owns(
    levels: list[tuple[int, int]], open_steps: int, min_steps: int,
) -> None:
    sizes = tuple(STEP * s for s, _ in levels)
    filled = tuple(STEP * min(f, s) for s, f in levels)
    open_qty, min_qty = STEP * open_steps, STEP * min_steps
    wanted = level_orders(sizes, filled, open_qty, min_qty)
    assert sum(wanted) <= open_qty
    for want, size, got in zip(wanted, sizes, filled, strict=True):
        assert 0 <= want <= size - got
        assert want == 0 or want >= min_qty or want == size - got
    # A partly filled level whose rest is below the minimum holds nothing (it cannot be
    # placed; the level counts as done and the stop covers the rest).
    rest = tuple(ZERO if ZERO < s - f < min_qty and f > 0 else s - f
                 for s, f in zip(sizes, filled, strict=True))
    if sum(rest) <= open_qty:
        assert wanted == rest


def test_level_prices_from_the_entry_on_the_profit_side() -> None:
    assert level_price(tp("2"), D("100"), long=True) == D("102")
    assert level_price(tp("2"), D("100"), long=False) == D("98")
    assert level_price(tp("2"), None, long=True) is None
    assert level_price(TakeProfit(price=D("123")), None, long=False) == D("123")


@given(st.decimals(D("0.01"), D("100000"), places=2), st.decimals(D("0"), D("0.01"), places=5),
       st.booleans())
def test_a_stop_hit_at_breakeven_loses_nothing_with_both_fees(entry: Decimal, fee: Decimal,
                                                              long: bool) -> None:
    be = breakeven(entry, fee, long)
    pnl = (be - entry) if long else (entry - be)
    fees = fee * (entry + be)
    assert abs(pnl - fees) < D("1e-20") * entry


def test_the_stop_moves_to_breakeven_then_to_the_previous_level() -> None:
    f = D("0.0006")
    levels = (tp("1", "50", SlAfterTp.PREVIOUS_TP), tp("2", "30", SlAfterTp.PREVIOUS_TP), tp("4"))
    prices = (D("101"), D("102"), D("104"))
    be = breakeven(D("100"), f, True)
    assert stop_after_levels(D("95"), levels, prices, (False,) * 3, D("100"), f, True) == D("95")
    assert stop_after_levels(D("95"), levels, prices, (True, False, False), D("100"), f, True) == be
    assert stop_after_levels(D("95"), levels, prices, (True, True, False), D("100"), f,
                             True) == D("101")
    # A short's stop moves down; never looser than the base stop.
    short = (tp("1", "50", SlAfterTp.BREAKEVEN), tp("2"))
    assert stop_after_levels(D("105"), short, (D("99"), D("98")), (True, False), D("100"), f,
                             False) == breakeven(D("100"), f, False)
    assert stop_after_levels(D("99.5"), short, (D("99"), D("98")), (True, False), D("100"), f,
                             False) == D("99.5")
    # No base stop: the first level gives it one.
    assert stop_after_levels(None, short, (D("99"), D("98")), (True, False), D("100"), f,
                             False) == breakeven(D("100"), f, False)


@given(st.lists(st.sampled_from(list(SlAfterTp)), min_size=1, max_size=6),
       st.lists(st.booleans(), min_size=6, max_size=6), st.booleans(),
       st.one_of(st.none(), st.decimals(D("50"), D("150"), places=1)))
def test_the_stop_never_moves_against_the_trade(afters: list[SlAfterTp], done: list[bool],
                                                long: bool, base: Decimal | None) -> None:
    levels = tuple(tp(str(i + 1), None, a) for i, a in enumerate(afters))
    prices = tuple(D(100 + (i + 1) * (1 if long else -1)) for i in range(len(levels)))
    stop = stop_after_levels(base, levels, prices, tuple(done[: len(levels)]), D("100"),
                             D("0.0006"), long)
    if base is not None:
        assert stop is not None and (stop >= base if long else stop <= base)
    fewer = stop_after_levels(base, levels, prices, (False,) * len(levels), D("100"),
                              D("0.0006"), long)
    assert fewer == base
