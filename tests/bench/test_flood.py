"""The anonymous flood's pure parts: its bodies, schedule, response parsing and the figures
the report states (no timing asserted)."""

from __future__ import annotations

import json

import pytest

from bench.alerts import Ack
from bench.flood import (
    FLOOD_KINDS,
    Phase,
    answered_rate,
    by_class,
    flood_body,
    outcome,
    parse_head,
    ratio,
    recorded_bound,
    request_bytes,
    schedule,
)


def _json_or_none(body: bytes) -> object:
    try:
        return json.loads(body)
    except ValueError:
        return None


def test_flood_bodies_take_each_kind_in_turn_and_none_carries_the_secret() -> None:
    bodies = [flood_body(k, "bench-flood-x") for k in range(len(FLOOD_KINDS))]
    wrong, missing, unknown, junk, nested = (_json_or_none(b) for b in bodies)
    assert isinstance(wrong, dict) and wrong["strategy"] == "bench-flood-x"
    assert wrong["secret"].startswith("not-the-secret")
    assert isinstance(missing, dict) and "secret" not in missing
    assert isinstance(unknown, dict) and unknown["strategy"] != "bench-flood-x"
    assert junk is None
    assert isinstance(nested, dict)
    depth, value = 0, nested
    while isinstance(value, dict):
        depth, value = depth + 1, next(iter(value.values()))
    assert depth > 3  # the webhook refuses more than 3 levels
    # The cycle repeats, with a fresh alert id each time.
    assert _json_or_none(flood_body(len(FLOOD_KINDS), "s"))["alert_id"] == (
        f"flood-{len(FLOOD_KINDS)}")


def test_schedule_spreads_requests_evenly_over_the_duration() -> None:
    offsets = schedule(300, 2)
    assert len(offsets) == 600
    assert offsets[0] == 0 and offsets[1] == pytest.approx(1 / 300)
    assert offsets[-1] < 2
    assert len(schedule(300, 0.5)) == 150


@pytest.mark.parametrize(("duration_s", "bound"), [(10, 10), (59.9, 10), (60, 20), (130, 30)])
def test_recorded_bound_counts_every_minute_window_the_flood_touches(
        duration_s: float, bound: int) -> None:
    assert recorded_bound(10, duration_s) == bound


def test_ratio_and_classes() -> None:
    assert ratio(30.0, 20.0) == 1.5
    assert ratio(30.0, 0.0) is None
    assert by_class({"429": 5, "401": 2, "422": 3, "400": 1, "0": 4}) == {
        "429": 5, "401/422": 5, "other": 5}


def test_answered_rate_counts_only_answers_within_the_window() -> None:
    assert answered_rate([0.1, 0.5, 1.9, 2.5], 2) == 1.5
    assert answered_rate([], 2) == 0


def test_request_bytes_is_one_http11_post_with_its_length() -> None:
    raw = request_bytes("127.0.0.1:8000", b'{"a":1}')
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(b"POST /webhook/tradingview HTTP/1.1\r\n")
    assert b"Content-Length: 7" in head and b"Host: 127.0.0.1:8000" in head
    assert body == b'{"a":1}'


def test_parse_head_reads_status_length_and_close() -> None:
    head = (b"HTTP/1.1 429 Too Many Requests\r\ncontent-length: 12\r\n"
            b"Retry-After: 1\r\nConnection: close\r\n\r\n")
    assert parse_head(head) == (429, 12, True)
    assert parse_head(b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 3\r\n\r\n") == (401, 3, False)
    with pytest.raises(ValueError, match="status line"):
        parse_head(b"garbage\r\n\r\n")


def _phase(statuses_ms: list[tuple[int, float]], flood: dict | None = None) -> Phase:
    return Phase("p", [Ack(s, {}, 0, t) for s, t in statuses_ms], flood)


def test_outcome_states_the_ratio_the_answers_and_the_rows_against_their_bound() -> None:
    idle = _phase([(202, 10.0)] * 99 + [(202, 20.0)])
    flooded = _phase([(202, 10.0)] * 99 + [(202, 40.0)] + [(503, 1.0)], flood={
        "sent": 3000, "sent_over_s": 10.0, "answered_per_s": 299.5,
        "statuses": {"429": 2900, "401": 60, "422": 30, "400": 10}})
    out = outcome(idle, flooded, 11, recorded_per_min=10, duration_s=10)
    rows = {r.metric: r for r in out.rows}
    assert out.details["p99_ratio"] == pytest.approx(
        out.details["under_flood"]["ack_ms"]["p99"] / out.details["no_flood"]["ack_ms"]["p99"],
        abs=0.01)
    assert rows["valid alerts not answered 202"].value == "1"
    assert rows["valid alerts not answered 202"].verdict == "MISSED"
    assert rows["flood answered 429 / 401 or 422 / other"].value == "2900 / 90 / 10"
    assert rows["flood sent / answered per s (asked for)"].value == "300 / 299.5 (300)"
    # 10 s of flood plus its lead before and after: one minute window, 10 rows at most.
    assert rows["signal rows the flood wrote"].target == "≤ 10"
    assert rows["signal rows the flood wrote"].verdict == "MISSED"
