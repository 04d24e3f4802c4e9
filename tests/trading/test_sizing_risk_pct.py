"""risk_pct sizing (docs/design.md#exits): the entry whose stop-loss, if hit, loses that share
of the account's equity, both taker fees included, conformed down to the pair's step."""

from __future__ import annotations

from decimal import Decimal, localcontext

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from tests.trading.factories import btc, doge, pair_rules, positive_decimals
from trading.errors import InvalidSizing, RuleViolation
from trading.rules import PairRules
from trading.sizing import (
    RiskInputs,
    SizingInstruction,
    entry_quantity,
    loss_per_unit,
    raw_quantity,
    risk_stop,
)
from trading.types import OrderType, PositionSide

D = Decimal
MARKET = OrderType.MARKET
LONG, SHORT = PositionSide.LONG, PositionSide.SHORT
FEE = D("0.0006")


def risk(equity: Decimal, side: PositionSide = LONG, *, sl: Decimal | None = None,
         sl_pct: Decimal | None = None, fee: Decimal = FEE) -> RiskInputs:
    return RiskInputs(equity=equity, side=side, fee_rate=fee, sl=sl, sl_pct=sl_pct)


def size(rules: PairRules, pct: str, price: Decimal, inputs: RiskInputs, **kw) -> Decimal:
    return entry_quantity(rules, SizingInstruction(risk_pct=D(pct)), order_type=MARKET,
                          price=price, risk=inputs, **kw).total


def test_a_long_by_hand() -> None:
    """10 000 USDT equity, 1 %: 100 USDT at risk. Entry 95 000, stop 94 000: each BTC loses
    1 000 of move, 95 000 × 0.0006 = 57 entering and 94 000 × 0.0006 = 56.4 at the stop:
    1 113.4 a BTC, so 100 / 1 113.4 = 0.08981... BTC, down to the step 0.0001: 0.0898."""
    assert size(btc(), "1", D(95000), risk(D(10000), sl=D(94000))) == D("0.0898")
    # Without fees the same stop allows 0.1 BTC: the fees are what makes it smaller.
    assert size(btc(), "1", D(95000), risk(D(10000), sl=D(94000), fee=D(0))) == D("0.1")


def test_a_short_by_hand_with_sl_pct() -> None:
    """A short at 0.2 with a 5 % stop: the stop at 0.21. 1 000 USDT equity, 2 %: 20 USDT at
    risk; a DOGE loses 0.01 + 0.0006 × 0.41 = 0.010246, so 1 951.98... DOGE, down to 1 951."""
    inputs = risk(D(1000), SHORT, sl_pct=D(5))
    assert risk_stop(SHORT, D("0.2"), None, D(5)) == D("0.21")
    assert size(doge(), "2", D("0.2"), inputs) == D(1951)


def test_a_size_below_the_pairs_minimum_is_refused_with_what_it_was_sized_from() -> None:
    with pytest.raises(RuleViolation) as err:
        size(btc(min_qty=D("0.01")), "0.1", D(95000), risk(D(1000), sl=D(94000)))
    assert err.value.rule == "min_qty"
    assert "below the pair's minimum 0.01" in err.value.message
    assert "risk_pct 0.1 % of the equity 1000 USDT, entry 95000, stop 94000" in err.value.message


def test_a_size_above_the_pairs_maximum_is_refused_unless_split() -> None:
    rules = btc(max_market_qty=D("0.05"))
    inputs = risk(D(10000), sl=D(94000))
    with pytest.raises(RuleViolation) as err:
        size(rules, "1", D(95000), inputs)
    assert err.value.rule == "max_market_qty"
    split = entry_quantity(rules, SizingInstruction(risk_pct=D(1)), order_type=MARKET,
                           price=D(95000), risk=inputs, allow_split=True)
    assert split.total == D("0.0898") and split.parts == (D("0.0449"), D("0.0449"))


@pytest.mark.parametrize(("side", "sl", "sl_pct", "says"), [
    (LONG, None, None, "needs a stop-loss: give sl or sl_pct"),
    (LONG, D(95000), None, "the stop-loss 95000 is not below the entry price 95000 of a long"),
    (LONG, D(96000), None, "not below the entry price"),
    (SHORT, D(94000), None, "the stop-loss 94000 is not above the entry price 95000 of a short"),
    (LONG, None, D(100), "needs a stop-loss above zero"),
    (LONG, D(94000), D(1), "sl or sl_pct, not both"),
])
def test_a_missing_or_wrong_sided_stop_is_refused(
    side: PositionSide, sl: Decimal | None, sl_pct: Decimal | None, says: str
) -> None:
    with pytest.raises(InvalidSizing) as err:
        size(btc(), "1", D(95000), risk(D(10000), side, sl=sl, sl_pct=sl_pct))
    assert says in err.value.message


@pytest.mark.parametrize(("equity", "says"), [
    (D(0), "the account's equity is 0; there is nothing to risk"),
    (D(-5), "the account's equity is -5"),
    (None, "needs the account's equity"),
])
def test_no_equity_is_refused(equity: Decimal | None, says: str) -> None:
    with pytest.raises(InvalidSizing) as err:
        size(btc(), "1", D(95000), risk(equity, sl=D(94000)))  # type: ignore[arg-type]
    assert says in err.value.message


def test_risk_pct_is_a_percent_of_at_most_100() -> None:
    with pytest.raises(InvalidSizing, match="risks more than the whole equity"):
        SizingInstruction(risk_pct=D("100.5"))
    with pytest.raises(InvalidSizing, match="exactly one of size, size_usdt, size_pct, risk_pct"):
        SizingInstruction(size=D(1), risk_pct=D(1))
    with pytest.raises(InvalidSizing, match="needs the equity"):
        raw_quantity(SizingInstruction(risk_pct=D(1)), price=D(95000))


@st.composite
def risk_cases(draw: st.DrawFn) -> tuple[PairRules, Decimal, RiskInputs, Decimal]:
    rules = draw(pair_rules())
    price = draw(positive_decimals(max_places=8, max_value=10**6))
    side = draw(st.sampled_from([LONG, SHORT]))
    # The stop 0.01 % .. 90 % from the entry, on the loss side.
    distance = draw(st.integers(1, 9000)) * price / 10000
    stop = price - distance if side is LONG else price + distance
    use_pct = draw(st.booleans())
    inputs = RiskInputs(
        equity=draw(positive_decimals(max_places=4, max_value=10**8)),
        side=side,
        fee_rate=draw(st.sampled_from([D(0), D("0.0002"), D("0.0006"), D("0.001"), D("0.01")])),
        sl=None if use_pct else stop,
        sl_pct=(distance * 100 / price) if use_pct else None,
    )
    return rules, price, inputs, D(draw(st.integers(1, 10000))).scaleb(-2)


@given(risk_cases(), st.booleans())
def test_the_loss_at_the_stop_never_exceeds_the_risk_and_one_more_step_would(
    case: tuple[PairRules, Decimal, RiskInputs, Decimal], allow_split: bool
) -> None:
    """Whatever the pair, price, stop, equity and fee: the filled size losing at its stop,
    both fees included, loses at most risk_pct of the equity, and a step more would lose
    more, unless a pair rule refuses the size (then nothing is sized at all)."""
    rules, price, inputs, pct = case
    stop = risk_stop(inputs.side, price, inputs.sl, inputs.sl_pct)
    per_unit = loss_per_unit(price, stop, inputs.fee_rate)
    budget = inputs.equity * pct / 100
    try:
        sized = entry_quantity(rules, SizingInstruction(risk_pct=pct), order_type=MARKET,
                               price=price, risk=inputs, allow_split=allow_split)
    except RuleViolation as exc:
        # Refused only by a rule: too small for the pair, or too big without (enough) splits.
        assert exc.rule in ("min_qty", "max_market_qty", "max_parts"), exc
        if exc.rule == "min_qty" and not allow_split:
            # The most the budget buys on the grid is below the minimum.
            with localcontext() as ctx:
                ctx.prec = 80
                within = (budget / per_unit // rules.qty_step) * rules.qty_step
            assert within < rules.min_qty
        assume(False)
        return
    qty = sized.total
    assert qty > 0 and sum(sized.parts) == qty
    assert qty % rules.qty_step == 0
    assert qty * per_unit <= budget
    assert (qty + rules.qty_step) * per_unit > budget
