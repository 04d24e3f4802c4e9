"""The intent table: every combination of action × market_position × prev_market_position."""

from __future__ import annotations

import pytest

from trading.types import Intent
from webhook.intent import intent_of
from webhook.schemas import Action, AlertRefused, MarketPosition

BUY, SELL = Action.BUY, Action.SELL
L, S, F, N = MarketPosition.LONG, MarketPosition.SHORT, MarketPosition.FLAT, None
CONTRA = "contradictory fields"
NEEDS_MP = "missing field 'market_position'"

# (action, market_position, prev_market_position) -> Intent, or the start of the refusal.
TABLE: dict[tuple[Action, MarketPosition | None, MarketPosition | None], Intent | str] = {
    (BUY, N, N): Intent.OPEN_LONG,
    (BUY, N, L): NEEDS_MP,
    (BUY, N, S): NEEDS_MP,
    (BUY, N, F): NEEDS_MP,
    (BUY, L, N): Intent.OPEN_LONG,
    (BUY, L, F): Intent.OPEN_LONG,
    (BUY, L, L): Intent.OPEN_LONG,  # pyramiding: another long trade
    (BUY, L, S): Intent.REVERSE_TO_LONG,
    (BUY, F, N): Intent.CLOSE_SHORT,
    (BUY, F, S): Intent.CLOSE_SHORT,
    (BUY, F, L): CONTRA,
    (BUY, F, F): CONTRA,
    (BUY, S, N): Intent.CLOSE_SHORT,  # a partial exit (exit_part: how much)
    (BUY, S, S): Intent.CLOSE_SHORT,
    (BUY, S, L): CONTRA,
    (BUY, S, F): CONTRA,
    (SELL, N, N): Intent.OPEN_SHORT,
    (SELL, N, L): NEEDS_MP,
    (SELL, N, S): NEEDS_MP,
    (SELL, N, F): NEEDS_MP,
    (SELL, S, N): Intent.OPEN_SHORT,
    (SELL, S, F): Intent.OPEN_SHORT,
    (SELL, S, S): Intent.OPEN_SHORT,
    (SELL, S, L): Intent.REVERSE_TO_SHORT,
    (SELL, F, N): Intent.CLOSE_LONG,
    (SELL, F, L): Intent.CLOSE_LONG,
    (SELL, F, S): CONTRA,
    (SELL, F, F): CONTRA,
    (SELL, L, N): Intent.CLOSE_LONG,  # a partial exit (exit_part: how much)
    (SELL, L, L): Intent.CLOSE_LONG,
    (SELL, L, S): CONTRA,
    (SELL, L, F): CONTRA,
}


def test_the_table_covers_every_combination() -> None:
    positions = [*MarketPosition, None]
    assert set(TABLE) == {(a, mp, prev) for a in Action for mp in positions for prev in positions}


@pytest.mark.parametrize(("combo", "expected"), list(TABLE.items()), ids=lambda v: str(v))
def test_intent(combo: tuple, expected: Intent | str) -> None:
    if isinstance(expected, Intent):
        assert intent_of(*combo) is expected
    else:
        with pytest.raises(AlertRefused) as refused:
            intent_of(*combo)
        assert refused.value.message.startswith(expected), refused.value.message
        assert refused.value.status == 422


def test_buy_and_sell_mirror_each_other() -> None:
    mirror = {L: S, S: L, F: F, N: N}
    flip = {
        Intent.OPEN_LONG: Intent.OPEN_SHORT,
        Intent.OPEN_SHORT: Intent.OPEN_LONG,
        Intent.CLOSE_LONG: Intent.CLOSE_SHORT,
        Intent.CLOSE_SHORT: Intent.CLOSE_LONG,
        Intent.REVERSE_TO_LONG: Intent.REVERSE_TO_SHORT,
        Intent.REVERSE_TO_SHORT: Intent.REVERSE_TO_LONG,
    }
    for (action, mp, prev), expected in TABLE.items():
        other = TABLE[(SELL if action is BUY else BUY, mirror[mp], mirror[prev])]
        assert other == (flip[expected] if isinstance(expected, Intent) else expected)


def test_without_prev_market_position_a_size_above_what_is_held_is_a_refused_reversal() -> None:
    from decimal import Decimal

    def intent(size: str | None, held: str | None) -> Intent:
        return intent_of(BUY, L, N, size=Decimal(size) if size else None,
                         market_position_size=Decimal(held) if held else None)

    assert intent("0.01", "0.01") is Intent.OPEN_LONG  # from flat
    assert intent("0.01", "0.03") is Intent.OPEN_LONG  # adding
    assert intent(None, None) is Intent.OPEN_LONG  # Tradewire sizes it: never old-plus-new
    for size, held in (("0.03", "0.01"), ("0.03", None)):
        with pytest.raises(AlertRefused) as refused:
            intent(size, held)
        assert refused.value.message.startswith("missing field 'prev_market_position'")
    # With prev_market_position the table decides, whatever the sizes say.
    assert intent_of(BUY, L, S, size=Decimal("0.03"),
                     market_position_size=Decimal("0.01")) is Intent.REVERSE_TO_LONG


def test_percent_targets_must_stay_above_zero_for_the_side() -> None:
    from decimal import Decimal

    from webhook.intent import check_percent_targets

    hundred = Decimal(100)
    for intent, field in ((Intent.OPEN_SHORT, "tp_pct"), (Intent.REVERSE_TO_SHORT, "tp_pct"),
                          (Intent.OPEN_LONG, "sl_pct"), (Intent.REVERSE_TO_LONG, "sl_pct")):
        with pytest.raises(AlertRefused) as refused:
            check_percent_targets(intent, **{"tp_pct": None, "sl_pct": None, field: hundred})
        assert refused.value.message.startswith(f"field '{field}'")
    check_percent_targets(Intent.OPEN_LONG, hundred * 5, Decimal("99.9"))
    check_percent_targets(Intent.OPEN_SHORT, Decimal("99.9"), hundred * 5)
    check_percent_targets(Intent.CLOSE_SHORT, hundred, hundred)  # an exit places no TP/SL


def test_the_part_an_exit_closes() -> None:
    """docs/design.md#exits: close_pct on any exit; TradingView's partial exit (still on the
    side it reduces) closes its `size`; a whole exit's `size` says nothing more."""
    from decimal import Decimal

    from webhook.intent import check_exit_fields, exit_part

    d = Decimal
    assert exit_part(SELL, L, size=d("0.01"), close_pct=None) == (d("0.01"), None)
    assert exit_part(BUY, S, size=d("3"), close_pct=None) == (d("3"), None)
    assert exit_part(SELL, L, size=d("0.01"), close_pct=d("25")) == (None, d("25"))
    assert exit_part(SELL, F, size=d("0.01"), close_pct=d("50")) == (None, d("50"))
    assert exit_part(SELL, F, size=d("0.03"), close_pct=None) is None  # the whole position
    assert exit_part(SELL, L, size=None, close_pct=d("100")) is None
    with pytest.raises(AlertRefused) as refused:
        exit_part(SELL, L, size=None, close_pct=None)
    assert refused.value.message.startswith("missing field 'size': a partial exit")
    check_exit_fields(Intent.CLOSE_LONG, d("50"))
    for intent in (Intent.OPEN_LONG, Intent.REVERSE_TO_SHORT):
        with pytest.raises(AlertRefused) as refused:
            check_exit_fields(intent, d("50"))
        assert refused.value.message.startswith("field 'close_pct'")
