"""Webhook ack latency: POST sent → answer read, for alerts sent one at a time (the measured
opens of the signal-to-order series, fast path on). The ack waits only for the signal row
and Temporal accepting the start, never for the exchange."""

from __future__ import annotations

from bench.report import Outcome, Row, ms
from bench.signal_to_order import Series
from bench.stats import summary, verdict

TARGET_P99_MS = 15.0


def outcome(series: Series) -> Outcome:
    ack = summary(series.ack_ms)
    return Outcome(
        name="ack",
        title="4a. Webhook ack (one alert at a time)",
        rows=[
            Row("ack p50", ms(ack["p50"])),
            Row("ack p99", ms(ack["p99"]), f"≤ {TARGET_P99_MS:g} ms",
                verdict(ack["p99"], TARGET_P99_MS)),
        ],
        details={"ack_ms": ack, "fast_path": series.fast_path},
        notes=[f"the {ack['n']} measured open alerts of the signal-to-order series (fast path "
               f"{'on' if series.fast_path else 'off/unknown'}), one keep-alive connection"],
    )
