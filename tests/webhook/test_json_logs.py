"""The webhook's JSON log lines (TRADEWIRE_LOG_FORMAT=json, docs/design.md#metrics-and-logs):
an alert's lines carry its signal, trade and workflow ids once known, and never its secret."""

from __future__ import annotations

import io
import json
import logging

import logs

from .conftest import Webhook


async def test_an_accepted_alerts_log_line_carries_its_ids(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    logs.configure("INFO", "json")
    root.handlers[0].setStream(out)  # type: ignore[attr-defined]
    try:
        r = await webhook.post(webhook.alert(strat))
        refused = await webhook.post(webhook.alert(strat, action="nonsense"))
        logging.getLogger("webhook").info("after the alerts")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    assert r.status_code == 202, r.text
    assert refused.status_code == 422, refused.text
    answer = r.json()
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    started = [x for x in records if x["message"].startswith(f"trade #{answer['trade_id']} ")]
    assert started, records
    assert started[0]["trade_id"] == answer["trade_id"]
    assert started[0]["signal_id"] == answer["signal_id"]
    assert started[0]["workflow_id"] == answer["workflow_id"]
    # The next alert's lines do not inherit the ids of the one before; nor does a line outside.
    other = [x for x in records if "refused" in x["message"] and x["logger"] == "webhook"]
    assert other and other[0].get("trade_id") is None
    assert other[0].get("signal_id") != answer["signal_id"]
    assert "trade_id" not in records[-1] and records[-1]["message"] == "after the alerts"
    assert strat.secret not in out.getvalue()


def test_text_stays_the_default_format() -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    try:
        logs.configure("INFO")
        root.handlers[0].setStream(out)  # type: ignore[attr-defined]
        with logs.context(trade_id=7):
            logging.getLogger("webhook").info("hello")
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
    line = out.getvalue().strip()
    assert line.endswith("INFO    webhook: hello") and not line.startswith("{")
