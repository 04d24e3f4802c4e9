"""The candle-close measurement's own pieces: its pairs file and how it counts lost and doubled
alerts (the measurement itself runs in `make bench`)."""

from __future__ import annotations

from pathlib import Path

from bench.burst import Tally
from bench.candle_close import ALERT_USDT, ALERTS, SYMBOLS, outcome_counts, pairs_env
from paper.instruments import load_pairs, load_start_prices
from trading.types import PairStatus


def test_the_pairs_file_gives_the_paper_exchange_enough_pairs_an_alert_can_buy(
    tmp_path: Path,
) -> None:
    path = Path(pairs_env(tmp_path)["TRADEWIRE_PAPER_PAIRS_FILE"])
    pairs = load_pairs(path)  # as the paper exchange loads it
    prices = load_start_prices(None, pairs)
    usable = [s for s, p in pairs.items() if s.endswith("USDT") and p.status is PairStatus.OPEN
              and s in prices and p.min_qty * prices[s] * 2 <= ALERT_USDT]
    assert len(usable) >= SYMBOLS


def tally(**counts: int) -> Tally:
    base = dict(lost_workflows=0, doubled_workflows=0, lost_orders=0, doubled_orders=0,
                bad_trade_rows=0, strays=0)
    return Tally(**{**base, **counts}, strays_by_answer={}, to_order_ms=[], last_order_ns=None)


def test_an_alert_answered_late_that_traded_is_neither_lost_nor_doubled() -> None:
    assert outcome_counts(tally(strays=50), accepted=ALERTS - 50) == (0, 0)


def test_an_alert_with_no_order_is_lost_and_one_with_two_is_doubled() -> None:
    assert outcome_counts(tally(lost_orders=3, doubled_orders=2), accepted=ALERTS) == (3, 2)
    assert outcome_counts(tally(), accepted=ALERTS - 7) == (7, 0)  # unanswered, never traded
