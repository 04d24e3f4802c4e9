"""What a trade leaves in the metrics and the JSON log (docs/design.md#metrics-and-logs): real
trades on the harness (worker, activities, paper exchange, PostgreSQL), the process's metrics
registry read after them, the log captured through logs.py's own handler setup."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import update

import logs
import metrics
from db.models import TradingPair
from tests.workflows.harness import Harness
from trading.types import TradeStatus
from workflows.contract import Sizing


def sample(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


@contextmanager
def json_log() -> Iterator[io.StringIO]:
    """The process's logging as `TRADEWIRE_LOG_FORMAT=json` sets it up (logs.configure), into a
    buffer; the previous setup restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    out = io.StringIO()
    logs.configure("INFO", "json")
    handler = root.handlers[0]
    assert isinstance(handler, logging.StreamHandler)
    handler.setStream(out)
    try:
        yield out
    finally:
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])


def lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.getvalue().splitlines() if line.strip()]


async def test_a_filled_entry_counts_the_order_and_the_alert_to_order_time(
    harness: Harness,
) -> None:
    h = harness
    filled = sample("tradewire_orders_total", result="filled")
    timed = sample("tradewire_alert_to_order_seconds_count")
    handle = await h.trade(sizing=Sizing(size=Decimal("0.01")))
    await h.until_state(handle, lambda s: s.status is TradeStatus.TRACKING, "tracking")
    assert sample("tradewire_orders_total", result="filled") >= filled + 1
    # One observation per trade: its first entry order (the TP/SL and later orders are not).
    assert sample("tradewire_alert_to_order_seconds_count") == timed + 1
    assert sample("tradewire_alert_to_order_seconds_sum") > 0


async def test_a_rejected_entry_is_counted_and_its_log_lines_carry_the_ids(
    harness: Harness,
) -> None:
    h = harness
    rejected = sample("tradewire_orders_total", result="rejected")
    with json_log() as out:
        handle = await h.trade(sizing=Sizing(size=Decimal("500")))  # beyond the margin: 20003
        result = await h.result(handle)
    assert result.status is TradeStatus.FAILED
    trade_id = (await h.trade_row(handle)).id
    assert sample("tradewire_orders_total", result="rejected") == rejected + 1

    records = lines(out)  # every line is one JSON object
    activity = [r for r in records if r["logger"] == "activities" and "20003" in r["message"]]
    assert activity, f"no activity line about the rejection in {records}"
    assert activity[0]["trade_id"] == trade_id and activity[0]["workflow_id"] == handle.id
    assert activity[0]["level"] == "WARNING" and datetime.fromisoformat(activity[0]["time"])
    # Nothing secret on any line: the paper exchange's key and secret never appear.
    assert h.paper.api_secret not in out.getvalue() and h.paper.api_key not in out.getvalue()


async def test_a_workflow_log_line_carries_its_workflow_id(harness: Harness) -> None:
    h = harness
    # Stored rules out of date (as in test_refusals.py): the exchange rejects the entry, the
    # workflow warns that it refreshes the pair's rules once (workflow.logger).
    async with h.sessionmaker() as session, session.begin():
        await session.execute(update(TradingPair).where(TradingPair.symbol == "SOLUSDT")
                              .values(qty_step=Decimal("0.001"), min_qty=Decimal("0.001")))
    with json_log() as out:
        handle = await h.trade(symbol="SOLUSDT", sizing=Sizing(size=Decimal("0.005")))
        result = await h.result(handle)
    assert result.status is TradeStatus.REFUSED
    wf = [r for r in lines(out) if r["logger"] == "temporalio.workflow"
          and "refreshing the pair's rules once" in r["message"]]
    assert wf, f"no workflow line about the refresh in {out.getvalue()}"
    assert wf[0]["workflow_id"] == handle.id
    # Its trade id too, known from the trade's activities that ran before (logs.py).
    assert wf[0]["trade_id"] == (await h.trade_row(handle)).id
