"""A sender that gives up before its answer (TradingView's 3 s timeout, in a candle-close burst on
a busy webhook), over real HTTP: an alert whose body arrived whole is handled as if the answer
had gone out (TradingView never retries it: dropping it would lose the trader's signal), and a
body cut off by the disconnect is recorded refused, with its reason. Never a lost delivery.

A sender that asks first (`Expect: 100-continue`) is not read ahead: it is answered before it
sends its body when it is refused unread (throttled), and sends it once asked otherwise."""

from __future__ import annotations

import asyncio
import json
import socket
import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from tests.support.paper import PaperExchange
from webhook.schemas import render_alert

from .conftest import TOKEN, Live, Strat, make_settings
from .live import run_webhook

WAIT_S = 15.0


def _send_and_leave(url: str, raw: bytes, *, cut: int = 0) -> None:
    """The request (its last `cut` bytes never sent), then the connection closed at once: the
    server reads the end of the connection right behind the request."""
    request = _head(url, len(raw)) + raw
    with _connect(url) as sock:
        sock.sendall(request[: len(request) - cut])


def _head(url: str, length: int, *extra: str) -> bytes:
    """An alert delivery's request line and headers (`extra` ones too), for a `length`-byte body."""
    lines = [
        "POST /webhook/tradingview HTTP/1.1", f"Host: {urlsplit(url).hostname}",
        "Content-Type: application/json", f"Content-Length: {length}", *extra,
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _connect(url: str) -> socket.socket:
    parts = urlsplit(url)
    return socket.create_connection((parts.hostname, parts.port), timeout=5)


class _Answers:
    """The responses read off a connection one by one (an interim `100 Continue` is one)."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buffer = b""

    def next(self) -> tuple[int, dict[str, str], bytes]:
        while b"\r\n\r\n" not in self.buffer:
            self._more()
        head, self.buffer = self.buffer.split(b"\r\n\r\n", 1)
        status_line, *lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, v in (h.split(":", 1) for h in lines)}
        length = int(headers.get("content-length", "0"))
        while len(self.buffer) < length:
            self._more()
        body, self.buffer = self.buffer[:length], self.buffer[length:]
        return int(status_line.split()[1]), headers, body

    def _more(self) -> None:
        chunk = self.sock.recv(65536)
        assert chunk, f"the connection closed before a whole answer: {self.buffer!r}"
        self.buffer += chunk


def _alert(strat: Strat) -> bytes:
    return render_alert({
        "secret": strat.secret, "strategy": strat.name, "ticker": "BTCUSDT.P", "action": "buy",
        "size": Decimal("0.01"), "alert_id": uuid.uuid4().hex,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
    }).encode()


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
    _send_and_leave(live_webhook.url, _alert(strat))
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


def test_an_alert_sent_after_100_continue_is_handled(live_webhook: Live) -> None:
    """A sender that asks before sending its body is asked for it (the server's `100 Continue`
    when the route reads it) and its alert is handled like any other."""
    strat = live_webhook.add_strategy(rate_limit_per_min=1_000, max_alert_age_s=3600)
    raw = _alert(strat)
    with _connect(live_webhook.url) as sock:
        sock.sendall(_head(live_webhook.url, len(raw), "Expect: 100-continue"))
        answers = _Answers(sock)
        interim, _, _ = answers.next()
        assert interim == 100, "the body was never asked for"
        sock.sendall(raw)
        status, _, body = answers.next()
    assert status == 202, body
    rows = live_webhook.sql("SELECT outcome FROM signal WHERE strategy_id = %s", strat.id)
    assert rows == [("ACCEPTED",)]


def test_a_throttled_sender_that_asks_first_is_answered_before_its_body(
    temporal_env: WorkflowEnvironment,
    paper_exchange: PaperExchange,
    db_url: str,
    synced_pairs: list[str],
    tmp_path: Path,
) -> None:
    """Its body is not read ahead (which would ask for it, `100 Continue`, and wait for it): the
    429 comes first, and the body is never sent."""
    settings = make_settings(
        temporal_env, paper_exchange, tmp_path, anonymous_burst=1, anonymous_per_min=1
    )
    with run_webhook(settings, db_url) as url:
        unknown = Strat(0, f"s{uuid.uuid4().hex[:10]}", "not-a-secret")
        with _connect(url) as sock:  # spends the address's one unauthenticated delivery
            sock.sendall(_head(url, len(_alert(unknown))) + _alert(unknown))
            assert _Answers(sock).next()[0] == 401
        with _connect(url) as sock:
            sock.sendall(_head(url, len(_alert(unknown)), "Expect: 100-continue"))
            status, headers, _ = _Answers(sock).next()
    assert status == 429, f"answered {status} before its body was sent, not 429"
    assert "retry-after" in headers


def _halt(url: str, strategy: str, *, short: int = 0) -> None:
    """An admin halt of one strategy; with `short`, its declared length is `short` bytes more
    than the body sent, and the connection closes at once (the sender left mid-body)."""
    raw = json.dumps({"strategy": strategy, "reason": "sender-gone test"}).encode()
    head = "\r\n".join([
        "POST /risk/halt HTTP/1.1", f"Host: {urlsplit(url).hostname}",
        "Content-Type: application/json", f"Authorization: Bearer {TOKEN}",
        f"Content-Length: {len(raw) + short}",
    ]) + "\r\n\r\n"
    with _connect(url) as sock:
        sock.sendall(head.encode() + raw)
        if not short:
            assert _Answers(sock).next()[0] == 200


def test_an_admin_request_cut_off_is_not_carried_out(live_webhook: Live) -> None:
    """What arrived of it is a whole JSON value (the cut fell after it): acting on it would
    halt a strategy nobody asked to halt, for a sender who never gets the answer."""
    cut = live_webhook.add_strategy()
    whole = live_webhook.add_strategy()
    _halt(live_webhook.url, cut.name, short=5)
    _halt(live_webhook.url, whole.name)  # after the cut one, on another connection
    events = "SELECT state_after FROM risk_event WHERE scope = %s"
    assert _until(live_webhook, events, f"strategy:{whole.name}") == [("HALTED",)]
    time.sleep(0.5)  # the cut request came first: any effect of it is in by now
    assert live_webhook.sql(events, f"strategy:{cut.name}") == []


# --- the admin door, at the ASGI level: when the server says the sender left ----------------
# Which of the request's first read and the server's news of the disconnect comes first depends
# on the event loop's turn; here the server's answer is given as it would be either way.


def _door_run(length: int, messages: list[dict]) -> list[bytes]:
    """An admin POST with `Content-Length: length` through the front door, the server giving
    `messages` then a disconnect; what the app behind it got (one body per call)."""
    from settings import Settings
    from webhook.frontdoor import FrontDoor

    got: list[bytes] = []

    async def app(scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        got.append(body)

    queue = [*messages, {"type": "http.disconnect"}]

    async def receive() -> dict:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message) -> None:
        pass

    scope = {"type": "http", "method": "POST", "path": "/trades/7/cancel",
             "headers": [(b"authorization", f"Bearer {TOKEN}".encode()),
                         (b"content-length", str(length).encode())]}
    door = FrontDoor(app, Settings(_env_file=None, admin_token=TOKEN))
    asyncio.run(door(scope, receive, send))
    return got


def test_a_bodiless_admin_request_whose_sender_left_is_still_carried_out() -> None:
    # Its body (none) was whole: the server's disconnect came before the first read.
    assert _door_run(0, []) == [b""]


def test_an_admin_body_cut_off_reaches_nothing_behind_the_door() -> None:
    part = {"type": "http.request", "body": b'{"a": 1}', "more_body": True}
    assert _door_run(12, [part]) == []
    whole = {"type": "http.request", "body": b'{"a": 1}', "more_body": False}
    assert _door_run(8, [whole]) == [b'{"a": 1}']
