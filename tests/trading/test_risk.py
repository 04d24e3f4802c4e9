"""Property tests of the pure risk rules (trading/risk.py, docs/design.md#risk): the stricter
state is a maximum; with no limit nothing is refused; a limit refuses exactly when its bound is
crossed, and says which limit, of which scope, at which value; the daily loss breaches exactly
at its bound; a position's implied mark gives back its unrealized PnL. The reference arithmetic
is exact rational arithmetic (Fraction), independent of the Decimal code."""

from __future__ import annotations

from decimal import Decimal
from fractions import Fraction as F

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trading.errors import show
from trading.risk import (
    ACCOUNT,
    ProposedEntry,
    RiskLimits,
    RiskRefused,
    ScopeBook,
    check_entry,
    check_leverage,
    check_max_leverage,
    check_open_trades,
    daily_loss_breach,
    implied_mark,
    option,
    scope_label,
    state_refusal,
    strategy_scope,
    stricter,
    unrealized_pnl,
)
from trading.types import PositionSide, TradingState

D = Decimal
states = st.sampled_from(list(TradingState))
sides = st.sampled_from(list(PositionSide))
scopes = st.sampled_from([ACCOUNT, strategy_scope("trend"), strategy_scope("a.b-c_1")])
money = st.decimals(min_value=D("0.01"), max_value=D("1000000"), places=2)
signed = st.decimals(min_value=D("-1000000"), max_value=D("1000000"), places=4)
prices = st.decimals(min_value=D("0.0001"), max_value=D("200000"), places=4)
qtys = st.decimals(min_value=D("0.0001"), max_value=D("10000"), places=4)
counts = st.integers(0, 50)
leverages = st.integers(1, 125)


def maybe(s: st.SearchStrategy) -> st.SearchStrategy:
    return st.none() | s


limits_st = st.builds(
    RiskLimits,
    max_order_usdt=maybe(money), max_position_usdt=maybe(money),
    max_open_trades=maybe(st.integers(1, 50)), max_leverage=maybe(leverages),
    max_exposure_usdt=maybe(money), min_free_margin_usdt=maybe(money),
    daily_loss_usdt=maybe(money),
    daily_loss_pct=maybe(st.decimals(min_value=D("0.01"), max_value=D("99.99"), places=2)),
)
entries = st.builds(
    ProposedEntry, symbol=st.just("BTCUSDT"), notional=money, order_notional=money,
    leverage=maybe(leverages), available_margin=maybe(money),
)
books = st.builds(ScopeBook, open_trades=counts, symbol_usdt=money | st.just(D(0)),
                  exposure_usdt=money | st.just(D(0)))


# --- states --------------------------------------------------------------------------------


@given(states, states)
def test_stricter_is_the_maximum_and_commutes(a: TradingState, b: TradingState) -> None:
    assert stricter(a, b) is stricter(b, a)
    assert stricter(a, b).strictness == max(a.strictness, b.strictness)
    assert stricter(a, a) is a and stricter(a, TradingState.ACTIVE) is a
    assert stricter(a, TradingState.HALTED) is TradingState.HALTED


@given(states, states, states)
def test_stricter_is_associative(a: TradingState, b: TradingState, c: TradingState) -> None:
    assert stricter(stricter(a, b), c) is stricter(a, stricter(b, c))


@given(states, scopes, st.booleans())
def test_a_state_refuses_opens_unless_active_and_exits_only_when_halted(
    state: TradingState, scope: str, opens: bool
) -> None:
    refusal = state_refusal(state, scope, opens=opens)
    allowed = state is TradingState.ACTIVE if opens else state is not TradingState.HALTED
    assert (refusal is None) is allowed
    if refusal is not None:
        assert refusal.limit == "state" and refusal.scope == scope
        assert f"the {scope_label(scope)} is {state.value}" in refusal.message


def test_scope_labels_and_options() -> None:
    assert scope_label(ACCOUNT) == "account"
    assert scope_label(strategy_scope("trend")) == "strategy 'trend'"
    assert [option(n) for n in RiskLimits.names()] == [
        "--max-order-usdt", "--max-position-usdt", "--max-open-trades", "--max-leverage",
        "--max-exposure-usdt", "--min-free-margin-usdt", "--daily-loss-usdt", "--daily-loss-pct"]
    assert not RiskLimits().any and RiskLimits(max_leverage=3).any


# --- the limits after sizing ---------------------------------------------------------------


def broken(limits: RiskLimits, entry: ProposedEntry, book: ScopeBook) -> list[str]:
    """The limits the entry crosses, in the order check_entry checks them, exactly."""
    out = []
    if limits.max_order_usdt is not None and entry.order_notional > limits.max_order_usdt:
        out.append("max_order_usdt")
    if limits.max_position_usdt is not None \
            and F(book.symbol_usdt) + F(entry.notional) > F(limits.max_position_usdt):
        out.append("max_position_usdt")
    if limits.max_exposure_usdt is not None \
            and F(book.exposure_usdt) + F(entry.notional) > F(limits.max_exposure_usdt):
        out.append("max_exposure_usdt")
    if limits.max_open_trades is not None and book.open_trades >= limits.max_open_trades:
        out.append("max_open_trades")
    if limits.max_leverage is not None and entry.leverage is not None \
            and entry.leverage > limits.max_leverage:
        out.append("max_leverage")
    if limits.min_free_margin_usdt is not None and entry.available_margin is not None:
        left = F(entry.available_margin) - F(entry.notional) / (entry.leverage or 1)
        if left < F(limits.min_free_margin_usdt):
            out.append("min_free_margin_usdt")
    return out


@given(entries, books, scopes)
def test_without_limits_nothing_is_refused(entry: ProposedEntry, book: ScopeBook,
                                           scope: str) -> None:
    check_entry(RiskLimits(), scope, entry, book)
    check_open_trades(RiskLimits(), scope, book.open_trades)


@given(limits_st, entries, books, scopes)
def test_an_entry_is_refused_exactly_when_a_bound_is_crossed_naming_the_first(
    limits: RiskLimits, entry: ProposedEntry, book: ScopeBook, scope: str
) -> None:
    crossed = broken(limits, entry, book)
    if not crossed:
        check_entry(limits, scope, entry, book)
        return
    with pytest.raises(RiskRefused) as refused:
        check_entry(limits, scope, entry, book)
    err = refused.value
    assert err.limit == crossed[0] and err.scope == scope
    assert err.message.startswith(f"risk: {crossed[0]} of the {scope_label(scope)} is "
                                  f"{show(getattr(limits, crossed[0]))}")


@given(money, money, money, scopes)
def test_each_bound_itself_is_allowed_and_one_cent_past_it_refused(
    bound: Decimal, notional: Decimal, held: Decimal, scope: str
) -> None:
    exact = ProposedEntry(symbol="BTCUSDT", notional=bound, order_notional=bound, leverage=None,
                          available_margin=None)
    over = ProposedEntry(symbol="BTCUSDT", notional=bound + D("0.01"),
                         order_notional=bound + D("0.01"), leverage=None, available_margin=None)
    for name in ("max_order_usdt", "max_position_usdt", "max_exposure_usdt"):
        limits = RiskLimits(**{name: bound})
        check_entry(limits, scope, exact, ScopeBook())
        with pytest.raises(RiskRefused, match=name):
            check_entry(limits, scope, over, ScopeBook())
    # What the scope already holds counts: `held` open leaves `bound` for the new entry.
    limits = RiskLimits(max_exposure_usdt=held + bound, max_position_usdt=held + bound)
    check_entry(limits, scope, exact, ScopeBook(symbol_usdt=held, exposure_usdt=held))
    with pytest.raises(RiskRefused, match="max_position_usdt"):
        check_entry(limits, scope, over, ScopeBook(symbol_usdt=held, exposure_usdt=held))
    # Free margin: the order's initial margin (notional / leverage) taken from what is available.
    margin_entry = ProposedEntry(symbol="BTCUSDT", notional=notional * 4, order_notional=notional,
                                 leverage=4, available_margin=notional + bound)
    check_entry(RiskLimits(min_free_margin_usdt=bound), scope, margin_entry, ScopeBook())
    with pytest.raises(RiskRefused, match="min_free_margin_usdt"):
        check_entry(RiskLimits(min_free_margin_usdt=bound + D("0.01")), scope, margin_entry,
                    ScopeBook())


@given(st.integers(1, 50), counts, scopes)
def test_open_trades_at_intake_refuse_exactly_the_one_past_the_maximum(
    maximum: int, open_trades: int, scope: str
) -> None:
    limits = RiskLimits(max_open_trades=maximum)
    if open_trades < maximum:
        check_open_trades(limits, scope, open_trades)
        return
    with pytest.raises(RiskRefused) as refused:
        check_open_trades(limits, scope, open_trades)
    assert refused.value.limit == "max_open_trades" and refused.value.scope == scope
    assert f"max_open_trades of the {scope_label(scope)} is {maximum}" in refused.value.message


@given(maybe(leverages), leverages, leverages, scopes)
def test_leverage_is_refused_above_the_scope_limit_or_the_pair_maximum(
    maximum: int | None, pair_max: int, leverage: int, scope: str
) -> None:
    limits = RiskLimits(max_leverage=maximum)
    over_pair = leverage > pair_max
    over_limit = maximum is not None and leverage > maximum
    if not over_limit:  # the scope's limit alone (the account's, before the leverage is set)
        check_max_leverage(limits, scope, leverage)
    else:
        with pytest.raises(RiskRefused, match="max_leverage of the"):
            check_max_leverage(limits, scope, leverage)
    if not (over_pair or over_limit):
        check_leverage(limits, scope, leverage, pair_max, "BTCUSDT")
        return
    with pytest.raises(RiskRefused) as refused:
        check_leverage(limits, scope, leverage, pair_max, "BTCUSDT")
    assert refused.value.limit == "max_leverage"
    if over_pair:  # the pair's own maximum is said first: no limit can lift it
        assert f"leverage {leverage} is above BTCUSDT's maximum of {pair_max}" \
            in refused.value.message
    else:
        assert f"max_leverage of the {scope_label(scope)} is {maximum}: this trade would use " \
               f"{leverage}" in refused.value.message


# --- the daily loss -------------------------------------------------------------------------


@given(limits_st, signed, maybe(money | st.just(D(0))), scopes)
def test_the_daily_loss_breaches_exactly_at_its_bound(
    limits: RiskLimits, pnl: Decimal, start: Decimal | None, scope: str
) -> None:
    loss = -F(pnl)
    by_usdt = limits.daily_loss_usdt is not None and loss > 0 and loss >= F(limits.daily_loss_usdt)
    by_pct = (limits.daily_loss_pct is not None and start is not None and start > 0 and loss > 0
              and loss * 100 / F(start) >= F(limits.daily_loss_pct))
    why = daily_loss_breach(limits, scope, pnl, start)
    assert (why is not None) is (by_usdt or by_pct)
    if by_usdt:
        assert why is not None and why.startswith(
            f"daily_loss_usdt of the {scope_label(scope)} is {show(limits.daily_loss_usdt)}")
    elif by_pct:
        assert why is not None and why.startswith(
            f"daily_loss_pct of the {scope_label(scope)} is {show(limits.daily_loss_pct)} %")


@given(money, scopes)
def test_a_gain_or_no_limit_never_breaches(amount: Decimal, scope: str) -> None:
    tight = RiskLimits(daily_loss_usdt=D("0.01"), daily_loss_pct=D("0.01"))
    assert daily_loss_breach(tight, scope, amount, D(1000)) is None
    assert daily_loss_breach(tight, scope, D(0), D(1000)) is None
    assert daily_loss_breach(RiskLimits(), scope, -amount, D(1000)) is None


@given(sides, qtys, prices, prices)
def test_the_implied_mark_round_trips_with_the_unrealized_pnl(
    side: PositionSide, qty: Decimal, avg: Decimal, mark: Decimal
) -> None:
    pnl = unrealized_pnl(side, qty, avg, mark)
    assert F(pnl) == F(qty) * (F(mark) - F(avg)) * (1 if side is PositionSide.LONG else -1)
    assert implied_mark(side, qty, avg, pnl) == mark
    assert implied_mark(side, D(0), avg, pnl) is None
    assert implied_mark(side, qty, None, pnl) is None
