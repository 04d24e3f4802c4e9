"""The alert door against anonymous and absurd input (issue 20; the review's D1, D3, D9, D10,
D11, D12): nothing is expanded or stored in full before the secret is checked, nesting is
refused with a 422 (never a 500), anonymous answers carry no `signal_id`, one address's flood
is throttled and barely recorded while other addresses' alerts go through, both kinds of
wrong secret do the same work, and every number has bounds by meaning."""

from __future__ import annotations

import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from sqlalchemy import func, select

from db.models import Signal
from settings import Settings
from trading.types import SignalOutcome
from webhook.app import create_app
from webhook.decide import UNAUTHORIZED
from webhook.ratelimit import AnonymousLimiter, address_key
from webhook.schemas import MAX_ANONYMOUS_STORED_CHARS, MAX_BODY_BYTES, render_alert

from .conftest import Strat, Webhook


def _address() -> str:
    """A fresh documentation-range address per use, so rows can be counted per sender."""
    n = uuid.uuid4().int
    return f"198.18.{n % 250 + 1}.{(n >> 8) % 250 + 1}"


@asynccontextmanager
async def _app(
    webhook: Webhook, db_url: str, **overrides: Any
) -> AsyncIterator[Any]:
    """A second app on the same database, with settings overridden; `client(ip)` gives an
    HTTP client whose requests come from `ip`."""
    settings: Settings = webhook.settings.model_copy(update=overrides)
    app = create_app(settings, database_url=db_url)
    clients: list[httpx.AsyncClient] = []

    def client(ip: str) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=app, client=(ip, 40000))
        c = httpx.AsyncClient(transport=transport, base_url="http://tw")
        clients.append(c)
        return c

    async with app.router.lifespan_context(app):
        try:
            yield client
        finally:
            for c in clients:
                await c.aclose()


async def _post(http: httpx.AsyncClient, body: dict[str, Any] | bytes) -> httpx.Response:
    content = render_alert(body).encode() if isinstance(body, dict) else body
    return await http.post("/webhook/tradingview", content=content)


async def _rows_from(webhook: Webhook, ip: str) -> int:
    async with webhook.sessionmaker() as session:
        return (
            await session.execute(select(func.count()).where(Signal.source_ip == ip))
        ).scalar_one()


def _stored_size(row: Signal) -> int:
    return len(json.dumps(row.body, ensure_ascii=False)) if row.body is not None else 0


async def _anonymous_refusal(
    webhook: Webhook, r: httpx.Response, status: int, text: str
) -> Signal:
    """An anonymous refusal: its status and reason, no signal_id, and its (newest) row (a
    401's row says which of the two failures it was; the answer never does)."""
    assert r.status_code == status, r.text
    answer = r.json()
    assert answer["outcome"] == "REFUSED" and text in answer["reason"], answer
    assert "signal_id" not in answer, answer
    row = await webhook.last_signal()
    stored = "unauthorized: " if text == UNAUTHORIZED else text
    assert row.outcome == SignalOutcome.REFUSED and stored in (row.reason or ""), row.reason
    return row


# --- D1: numbers are bounded in the parser, before anything expands them ---------------------

HUGE = "1e100000000"


@pytest.mark.parametrize(
    "raw",
    [
        '{"size": 1e1000000}',
        '{"size": ' + HUGE + "}",
        '{"size": [' + ",".join([HUGE] * 3) + "]}",
        '{"price": [' + ",".join(["1e1000000"] * 50) + "]}",
        '{"size": ' + "9" * 5000 + "}",
    ],
    ids=["1e1000000", "1e100000000", "list-of-3", "50-in-price", "5000-digits"],
)
async def test_a_huge_number_without_a_secret_is_refused_unexpanded(
    webhook: Webhook, raw: str
) -> None:
    r = await webhook.post(raw.encode())
    field = "price" if "price" in raw else "size"
    row = await _anonymous_refusal(webhook, r, 422, f"field '{field}': number out of range")
    assert _stored_size(row) <= MAX_ANONYMOUS_STORED_CHARS


async def test_a_huge_number_with_the_secret_is_refused_naming_the_field(
    webhook: Webhook,
) -> None:
    strat = await webhook.add_strategy()
    raw = render_alert(webhook.alert(strat, size=None))[:-1] + ', "size": ' + HUGE + "}"
    r = await webhook.post(raw.encode())
    # Out of range is found while parsing, before the secret is read: an anonymous refusal.
    row = await _anonymous_refusal(webhook, r, 422, "field 'size': number out of range")
    assert row.body is None
    assert await webhook.trades_of(strat) == []


async def test_the_stored_body_of_an_anonymous_delivery_is_cut_short(webhook: Webhook) -> None:
    body = {"ticker": ["1e18"] * 600, "strategy": "nosuchstrategy", "secret": "x" * 24}
    raw = json.dumps(body).replace('"1e18"', "1e18").encode()
    assert len(raw) < MAX_BODY_BYTES
    r = await webhook.post(raw)
    row = await _anonymous_refusal(webhook, r, 401, UNAUTHORIZED)
    assert 0 < _stored_size(row) <= MAX_ANONYMOUS_STORED_CHARS


# --- D3: nesting is a 422, recorded, never a 500 ---------------------------------------------


@pytest.mark.parametrize("depth", [4, 400, 800, 5000])
async def test_nested_json_is_422_and_recorded(webhook: Webhook, depth: int) -> None:
    raw = '{"a":' + "[" * depth + "]" * depth + "}"
    r = await webhook.post(raw.encode())
    row = await _anonymous_refusal(webhook, r, 422, "nested too deep")
    assert row.body is None


async def test_nested_fields_with_the_secret_are_422_too(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    base = render_alert(webhook.alert(strat, ticker=None))[:-1]
    for extra in (
        '"ticker": ' + "[" * 500 + '"BTCUSDT"' + "]" * 500,
        '"ticker": "BTCUSDT", "price": ' + "[" * 500 + "1" + "]" * 500,
    ):
        r = await webhook.post((base + ", " + extra + "}").encode())
        await _anonymous_refusal(webhook, r, 422, "nested too deep")
    assert await webhook.trades_of(strat) == []


async def test_shallow_structure_is_refused_by_field_not_by_depth(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat, ticker=[["BTCUSDT"]]))
    assert r.status_code == 422 and "field 'ticker'" in r.json()["reason"], r.text
    assert "signal_id" in r.json()  # authenticated: the answer names its row


# --- D12: anonymous answers never carry the global counter -----------------------------------


async def test_refusals_before_authentication_carry_no_signal_id(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    cases = [
        (b'{"secret": "x", oops}', 400, "body is not JSON"),
        (webhook.alert(strat, secret=None), 422, "missing field 'secret'"),
        (webhook.alert(strat, secret="not-the-secret-at-all-000"), 401, UNAUTHORIZED),
        (webhook.alert(strat, strategy="nosuchstrategy"), 401, UNAUTHORIZED),
        (b" " * (MAX_BODY_BYTES + 1), 413, "body larger than"),
    ]
    for body, status, text in cases:
        await _anonymous_refusal(webhook, await webhook.post(body), status, text)
    # Past the secret, the answer names its row again.
    known = await webhook.post(webhook.alert(strat, slpct="1"))
    assert known.status_code == 422 and isinstance(known.json()["signal_id"], int), known.text
    assert (await webhook.signal(known.json()["signal_id"])).strategy_id == strat.id


# --- D11: a per-address limit on callers without a secret -------------------------------------


async def test_a_flood_from_one_address_is_throttled_and_barely_recorded(
    webhook: Webhook, db_url: str
) -> None:
    strat = await webhook.add_strategy(rate_limit_per_min=1000)
    flooder, sender = _address(), _address()
    settings = webhook.settings
    async with _app(webhook, db_url) as client:
        junk, good = client(flooder), client(sender)
        statuses: dict[int, int] = {}
        for i in range(300):
            r = await _post(junk, webhook.alert(strat, secret=f"wrong-secret-{i:012d}"))
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            if r.status_code == 429:
                assert int(r.headers["Retry-After"]) >= 1
                assert "signal_id" not in r.json()
            if i % 50 == 25:  # valid alerts from another address, in the middle of the flood
                ok = await _post(good, webhook.alert(strat))
                assert ok.status_code == 202, ok.text
    assert statuses.get(401, 0) <= settings.anonymous_burst + 10, statuses
    assert statuses.get(429, 0) >= 300 - settings.anonymous_burst - 10, statuses
    assert await _rows_from(webhook, flooder) <= settings.anonymous_recorded_per_min
    assert await _rows_from(webhook, sender) == 6


async def test_authenticated_alerts_never_spend_the_anonymous_budget(
    webhook: Webhook, db_url: str
) -> None:
    strat = await webhook.add_strategy(rate_limit_per_min=1000)
    sender = _address()
    async with _app(webhook, db_url, anonymous_burst=2, anonymous_per_min=1) as client:
        http = client(sender)
        for _ in range(5):
            assert (await _post(http, webhook.alert(strat))).status_code == 202
        for _ in range(2):
            assert (await _post(http, webhook.alert(strat, secret="w" * 24))).status_code == 401
        throttled = await _post(http, webhook.alert(strat))
    assert throttled.status_code == 429 and "Retry-After" in throttled.headers


def test_the_anonymous_limiter_refills_caps_records_and_forgets_the_oldest() -> None:
    now = [0.0]
    limiter = AnonymousLimiter(
        burst=3, per_min=60, recorded_per_min=2, max_addresses=2,
        exempt=["52.89.214.238"], clock=lambda: now[0],
    )
    recorded = [limiter.refused("192.0.2.1") for _ in range(3)]
    assert recorded == [True, True, False]
    assert limiter.wait("192.0.2.1") == pytest.approx(1.0)
    now[0] += 1.0
    assert limiter.wait("192.0.2.1") is None
    now[0] += 60.0  # a new minute: records again
    assert limiter.refused("192.0.2.1") is True
    # TradingView's shared senders are never throttled, only their records capped.
    for _ in range(10):
        limiter.refused("52.89.214.238")
    assert limiter.wait("52.89.214.238") is None
    # Bounded memory: a third address evicts the least recently seen.
    limiter.refused("192.0.2.2")
    limiter.refused("192.0.2.3")
    assert len(limiter._callers) == 2
    # One IPv6 host's /64 is one caller; mapped IPv4 is the IPv4 address.
    assert address_key("2001:db8::1") == address_key("2001:db8::ffff:1") == "2001:db8::/64"
    assert address_key("::ffff:192.0.2.1") == "192.0.2.1"
    assert address_key("not-an-ip") == address_key(None) == "unknown"


# --- D9: both kinds of wrong secret do the same work -------------------------------------------


async def test_wrong_secret_for_an_existing_or_a_missing_strategy_leaves_alike_rows(
    webhook: Webhook,
) -> None:
    strat = await webhook.add_strategy()
    wrong = await webhook.post(webhook.alert(strat, secret="not-the-secret-at-all-000"))
    row_wrong = await _anonymous_refusal(webhook, wrong, 401, UNAUTHORIZED)
    missing = await webhook.post(webhook.alert(strat, strategy="nosuchstrategy"))
    row_missing = await _anonymous_refusal(webhook, missing, 401, UNAUTHORIZED)
    assert row_wrong.strategy_id is None and row_missing.strategy_id is None
    assert wrong.headers == missing.headers
    assert wrong.json() == missing.json()


async def test_wrong_secret_takes_the_same_time_for_existing_and_missing_strategies(
    webhook: Webhook, db_url: str
) -> None:
    """The issue asks for a measured comparison: medians of interleaved requests, with a
    generous bound (the review measured +0.21–0.26 ms, about 5 %, for an existing name)."""
    strat = await webhook.add_strategy()
    # Every request recorded, so the row each writes is part of what is compared.
    async with _app(
        webhook, db_url, anonymous_burst=100_000, anonymous_recorded_per_min=100_000
    ) as client:
        http = client(_address())
        bodies = {
            "existing": render_alert(webhook.alert(strat, secret="x" * 24)).encode(),
            "missing": render_alert(
                webhook.alert(strat, strategy=strat.name[:-1] + "~", secret="x" * 24)
            ).encode(),
        }
        times: dict[str, list[float]] = {"existing": [], "missing": []}
        for i in range(220):
            for kind in ("existing", "missing") if i % 2 else ("missing", "existing"):
                start = time.perf_counter()
                r = await http.post("/webhook/tradingview", content=bodies[kind])
                elapsed = time.perf_counter() - start
                assert r.status_code == 401, r.text
                if i >= 20:  # warm-up: connections, prepared statements
                    times[kind].append(elapsed)
    existing, missing = (statistics.median(times[k]) for k in ("existing", "missing"))
    bound = max(0.25 * min(existing, missing), 0.001)
    assert abs(existing - missing) < bound, (existing, missing)


# --- D10: every number has bounds by meaning --------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"order_type": "limit", "price": "1e-999999"}, "price"),
        ({"sl_pct": "1e-999999"}, "sl_pct"),
        ({"sl_pct": "0.001"}, "sl_pct"),
        ({"tp_pct": "0.0001"}, "tp_pct"),
        ({"size": None, "size_usdt": "1_000"}, "size_usdt"),
        ({"size": None, "size_usdt": "\u0665"}, "size_usdt"),  # Arabic-Indic 5
        ({"size": "1\uff10"}, "size"),  # a full-width digit
        ({"leverage": "1_0"}, "leverage"),
        ({"tp": "65000.123456789012345678901"}, "tp"),  # more digits than any pair has
        ({"sl": "1e19"}, "sl"),
        ({"size": None, "size_pct": "1e-30"}, "size_pct"),
    ],
)
async def test_absurd_or_oddly_written_numbers_are_422_naming_the_field(
    webhook: Webhook, fields: dict[str, Any], field: str
) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat, **fields))
    assert r.status_code == 422, r.text
    assert f"field {field!r}" in r.json()["reason"], r.json()["reason"]
    row = await webhook.signal(r.json()["signal_id"])
    assert row.outcome == SignalOutcome.REFUSED
    assert await webhook.trades_of(strat) == []


@pytest.mark.parametrize(
    "raw_fields",
    ['"price": 1e-999999, "order_type": "limit"', '"alert_id": 1e30', '"sl_pct": 0e-99999'],
)
async def test_bare_numbers_out_of_range_are_422_naming_the_field(
    webhook: Webhook, raw_fields: str
) -> None:
    strat = await webhook.add_strategy()
    base = webhook.alert(strat, alert_id=None)
    raw = render_alert(base)[:-1] + ", " + raw_fields + "}"
    r = await webhook.post(raw.encode())
    field = raw_fields.split('"')[1]
    await _anonymous_refusal(webhook, r, 422, f"field {field!r}: number out of range")
    assert await webhook.trades_of(strat) == []


async def test_sensible_values_still_pass(webhook: Webhook) -> None:
    strat: Strat = await webhook.add_strategy()
    for fields in (
        {"sl_pct": "0.5", "tp_pct": "1.25"},
        {"size": " 0.01 "},
        {"order_type": "limit", "price": "0.00001234", "size": "1e-3"},
        {"leverage": "10", "tp": "70000.5", "sl": "60000"},
    ):
        r = await webhook.post(webhook.alert(strat, **fields))
        assert r.status_code == 202, (fields, r.text)


# --- an unexpected error: one line, never a traceback the caller's body sizes -------------------


async def test_an_unexpected_error_is_one_log_line_not_a_traceback(
    webhook: Webhook, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # No body reaches one any more (nesting is refused before anything recursive runs), so
    # the intake is made to fail as a deep body once made it fail.
    async def fail(*_: Any) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(webhook.app.state.intake, "handle", fail)
    with caplog.at_level("ERROR", logger="webhook"):
        r = await webhook.post(b'{"a": 1}')
    assert r.status_code == 500 and r.json()["outcome"] == "NOT_RECORDED", r.text
    errors = [rec for rec in caplog.records if rec.levelname == "ERROR"]
    assert len(errors) == 1 and errors[0].exc_info is None
    assert "RecursionError" in errors[0].getMessage()
