"""bench/two_workers.py's count of the busiest second per endpoint (the pure part)."""

from __future__ import annotations

from bench.two_workers import busiest_windows

PLACE = "/api/v1/futures/trade/place_order"
S = 1_000_000_000


def entry(t_ns: int, path: str = PLACE) -> dict[str, object]:
    return {"t_ns": t_ns, "path": path, "code": 0}


def test_a_window_is_one_second_wide_and_half_open() -> None:
    log = [entry(0), entry(S // 2), entry(S - 1), entry(S)]
    assert [len(w) for w in busiest_windows(log).values()] == [3]  # 0 and S: a second apart


def test_each_endpoint_is_counted_on_its_own() -> None:
    log = [entry(0), entry(1), entry(2, "/api/v1/futures/market/tickers")]
    assert {p: len(w) for p, w in busiest_windows(log).items()} == {
        PLACE: 2, "/api/v1/futures/market/tickers": 1}


def test_the_busiest_window_is_found_wherever_it_is() -> None:
    log = [entry(0), entry(3 * S), entry(3 * S + 10), entry(3 * S + 20), entry(5 * S)]
    assert busiest_windows(log)[PLACE] == [3 * S, 3 * S + 10, 3 * S + 20]
