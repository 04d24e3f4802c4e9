"""A sender that gives up before its answer (TradingView's 3 s timeout, in a candle-close burst on
a busy webhook), over real HTTP: an alert whose body arrived whole is handled as if the answer
had gone out (TradingView never retries it: dropping it would lose the trader's signal), and a
body cut off by the disconnect is recorded refused, with its reason. Never a lost delivery."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from urllib.parse import urlsplit

from temporalio.client import Client

from webhook.schemas import render_alert

from .conftest import Live

WAIT_S = 15.0


def _send_and_leave(url: str, raw: bytes, *, cut: int = 0) -> None:
    """The request (its last `cut` bytes never sent), then the connection closed at once: the
    server reads the end of the connection right behind the request."""
    parts = urlsplit(url)
    head = (
        "POST /webhook/tradingview HTTP/1.1\r\n"
        f"Host: {parts.hostname}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {len(raw)}\r\n\r\n"
    ).encode()
    request = head + raw
    with socket.create_connection((parts.hostname, parts.port), timeout=5) as sock:
        sock.sendall(request[: len(request) - cut])


def _until(live: Live, query: str, *args: object) -> list[tuple]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        rows = live.sql(query, *args)
        if rows:
            return rows
        time.sleep(0.05)
    return []


def test_an_alert_whose_sender_left_is_handled_and_recorded(live_webhook: Live) -> None:
    strat = live_webhook.add_strategy(rate_limit_per_min=1_000, max_alert_age_s=3600)
    alert_id = uuid.uuid4().hex
    body = {
        "secret": strat.secret, "strategy": strat.name, "ticker": "BTCUSDT.P", "action": "buy",
        "size": Decimal("0.01"), "alert_id": alert_id,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    _send_and_leave(live_webhook.url, render_alert(body).encode())
    rows = _until(live_webhook, "SELECT outcome, workflow_id FROM signal WHERE strategy_id = %s",
                  strat.id)
    assert rows and rows[0][0] == "ACCEPTED", "a whole alert was dropped because its sender left"
    trades = live_webhook.sql("SELECT count(*) FROM trade WHERE strategy_id = %s", strat.id)
    assert trades == [(1,)]
    assert asyncio.run(_started(live_webhook.settings.temporal_target, rows[0][1]))


async def _started(target: str, workflow_id: str) -> bool:
    """Whether Temporal holds the trade's workflow (its start came after the answer's end)."""
    client = await Client.connect(target)
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        try:
            await client.get_workflow_handle(workflow_id).describe()
            return True
        except Exception:  # noqa: BLE001 - not started yet
            await asyncio.sleep(0.1)
    return False


def test_a_body_cut_off_by_the_disconnect_is_recorded_refused(live_webhook: Live) -> None:
    marker = uuid.uuid4().hex
    raw = render_alert({"strategy": marker, "action": "buy", "ticker": "BTCUSDT"}).encode()
    [(last,)] = live_webhook.sql("SELECT coalesce(max(id), 0) FROM signal")
    _send_and_leave(live_webhook.url, raw, cut=5)
    rows = _until(live_webhook, "SELECT outcome, reason FROM signal WHERE id > %s", last)
    assert rows, "a delivery cut off by its sender's disconnect left no record"
    [(outcome, reason)] = rows
    assert outcome == "REFUSED"
    assert "connection closed before its body was complete" in reason
    assert f"{len(raw) - 5} of {len(raw)} bytes" in reason
