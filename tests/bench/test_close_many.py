"""The close-many measurement's own pieces: how it judges that each trade closed exactly its own
quantity, and its verdicts (the measurement itself runs in `make bench`)."""

from __future__ import annotations

from decimal import Decimal

from bench.close_many import TARGET_S, Round, TradeBook, cpu_used, misbooked, outcome


def book(trade_id: int = 1, status: str = "CLOSED", filled: str = "0.001", closed: str = "0.001",
         entry: str = "0.001", exit_: str = "0.001") -> TradeBook:
    return TradeBook(trade_id, status, Decimal(filled), Decimal(closed), Decimal(entry),
                     Decimal(exit_))


def test_a_trade_closed_by_its_own_orders_for_what_it_opened_is_booked_right() -> None:
    assert misbooked([book(1), book(2, filled="0.002", closed="0.002", entry="0.002",
                                    exit_="0.002")]) == []


def test_a_trade_not_closed_or_closing_more_or_less_than_it_owned_is_named() -> None:
    wrong = misbooked([
        book(1, status="TRACKING"),
        book(2, closed="0.0005"),
        book(3, exit_="0.002"),  # its exit orders closed another trade's share too
        book(4, entry="0.0009"),
        book(5, filled="0", closed="0", entry="0", exit_="0"),
    ])
    assert [w.split(":")[0] for w in wrong] == [f"trade #{k}" for k in range(1, 6)]


def a_round(closed_s: float | None, last_order_s: float | None = 0.5, **kw: object) -> Round:  # float-ok: seconds
    base: dict[str, object] = dict(trades=50, answer_status=202, answer_closing=50, ack_ms=20.0,
                                   last_order_s=last_order_s, closed_s=closed_s, close_orders=50)
    return Round(**(base | kw))  # type: ignore[arg-type]


def test_the_verdict_is_the_slowest_round_against_the_target() -> None:
    met = outcome([a_round(1.0), a_round(1.5), a_round(TARGET_S)], 50)
    assert met.rows[0].verdict == "met" and met.rows[-1].verdict == "met"
    assert met.details["closed_s"]["p50"] == 1.5 and met.details["closed_s"]["max"] == TARGET_S
    assert met.details["last_order_s"]["max"] == 0.5
    missed = outcome([a_round(1.0), a_round(TARGET_S + 0.1)], 50)
    assert missed.rows[0].verdict == "MISSED"


def test_a_round_that_did_not_close_everything_or_left_a_position_misses() -> None:
    unclosed = outcome([a_round(1.0), a_round(None)], 50)
    assert unclosed.rows[0].verdict == "MISSED" and unclosed.rows[-1].verdict == "MISSED"
    left = outcome([a_round(1.0, position_left="0.001")], 50)
    assert left.rows[0].verdict == "met" and left.rows[-1].verdict == "MISSED"
    none = outcome([a_round(None, last_order_s=None)], 50)
    assert none.rows[0].verdict == "MISSED"


def test_cpu_is_reported_per_closed_trade_and_by_process() -> None:
    rounds = [a_round(1.0, cpu_s={"worker": 2.0, "webhook": 1.0}),
              a_round(1.0, cpu_s={"worker": 4.0, "webhook": 1.0})]
    out = outcome(rounds, 50)
    assert out.details["cpu_ms_per_closed_trade"] == 80.0  # (3 s + 5 s) / 2 rounds / 50
    assert out.details["cpu_ms_per_closed_trade_by_process"] == {"worker": 60.0, "webhook": 20.0}
    assert any(r.value.startswith("80 ms (worker 60, webhook 20)") for r in out.rows)


def test_cpu_used_is_the_difference_by_process() -> None:
    assert cpu_used({"worker": 1.0}, {"worker": 3.5, "webhook": 1.0}) == {"worker": 2.5,
                                                                          "webhook": 1.0}
