"""POST /webhook/tradingview against real PostgreSQL and Temporal: one test per way an alert is
refused (status, message and `signal` row), and what an accepted alert leaves behind."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import update
from temporalio.client import WorkflowExecutionStatus

from db.models import Strategy
from trading.types import SignalOutcome, TradeStatus
from webhook.decide import UNAUTHORIZED
from webhook.schemas import MAX_BODY_BYTES

from .conftest import Webhook


def _iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%SZ")


async def _refused(webhook: Webhook, response, status: int, text: str):
    assert response.status_code == status, response.text
    body = response.json()
    assert body["outcome"] == "REFUSED"
    assert text in body["reason"], body["reason"]
    # A refusal before authentication does not reveal the global counter (issue 20, D12):
    # its row is the newest one.
    if status in (400, 401, 413) or "field 'secret'" in text:
        assert "signal_id" not in body, body
        row = await webhook.last_signal()
    else:
        row = await webhook.signal(body["signal_id"])
    assert row.outcome == SignalOutcome.REFUSED
    return body, row


async def test_accepted_alert_records_signal_and_trade_then_starts_the_workflow(
    webhook: Webhook,
) -> None:
    strat = await webhook.add_strategy()
    body = webhook.alert(strat)
    r = await webhook.post(body)
    assert r.status_code == 202, r.text
    answer = r.json()
    assert answer["workflow_id"] == f"trade-{strat.name}-{answer['signal_id']}"
    assert answer["ui_url"].startswith("http://ui.test/namespaces/default/workflows/trade-")
    assert (answer["intent"], answer["symbol"]) == ("OPEN_LONG", "BTCUSDT")
    signal = await webhook.signal(answer["signal_id"])
    assert signal.outcome == SignalOutcome.ACCEPTED
    assert signal.workflow_id == answer["workflow_id"]
    assert signal.dedupe_key == "a:" + body["alert_id"]
    assert "secret" not in signal.body and strat.secret not in str(signal.body)
    assert signal.body["size"] == "0.01"  # exact text, never a float
    trade = await webhook.trade(answer["trade_id"])
    assert (trade.status, trade.side, trade.symbol, trade.signal_id) == (
        TradeStatus.PENDING,
        "LONG",
        "BTCUSDT",
        signal.id,
    )
    described = await webhook.temporal.get_workflow_handle(answer["workflow_id"]).describe()
    assert described.status == WorkflowExecutionStatus.RUNNING
    assert described.workflow_type == "TradeWorkflow"
    assert described.typed_search_attributes is not None


async def test_second_delivery_answers_200_with_the_same_trade(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    body = webhook.alert(strat)
    first, second = await webhook.post(body), await webhook.post(body)
    assert first.status_code == 202 and second.status_code == 200, second.text
    assert second.json()["trade_id"] == first.json()["trade_id"]
    assert second.json()["workflow_id"] == first.json()["workflow_id"]
    dup = await webhook.signal(second.json()["signal_id"])
    assert dup.outcome == SignalOutcome.DUPLICATE
    assert dup.reason == f"duplicate of signal #{first.json()['signal_id']}"
    assert len(await webhook.trades_of(strat)) == 1


async def test_text_plain_body_and_exchange_prefixed_ticker(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    body = webhook.alert(strat, ticker="BITUNIX:ESPUSDT.P", size="12.5")
    r = await webhook.post(body, content_type="text/plain; charset=utf-8")
    assert r.status_code == 202, r.text
    assert r.json()["symbol"] == "ESPUSDT"
    workflow = await webhook.temporal.get_workflow_handle(r.json()["workflow_id"]).describe()
    assert workflow.status == WorkflowExecutionStatus.RUNNING


async def test_not_json_is_400(webhook: Webhook) -> None:
    _, row = await _refused(
        webhook, await webhook.post(b'{"secret": "x", oops}'), 400, "body is not JSON"
    )
    assert row.body is None  # unparseable: it may hold the secret, so nothing is kept


async def test_wrong_secret_and_unknown_strategy_get_the_same_401(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    wrong = await webhook.post(webhook.alert(strat, secret="not-the-secret-at-all-000"))
    a, row_a = await _refused(webhook, wrong, 401, UNAUTHORIZED)
    unknown = await webhook.post(webhook.alert(strat, strategy="nosuchstrategy"))
    b, row_b = await _refused(webhook, unknown, 401, UNAUTHORIZED)
    assert a["reason"] == b["reason"] == UNAUTHORIZED
    assert row_a.reason == "unauthorized: wrong secret"
    assert row_b.reason == "unauthorized: unknown strategy 'nosuchstrategy'"
    # No strategy_id on either: its foreign-key check made the existing name slower (D9).
    assert row_a.strategy_id is None and row_b.strategy_id is None
    assert row_a.strategy_name == strat.name
    assert "not-the-secret" not in str(row_a.body)


async def test_missing_secret_is_422(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    await _refused(
        webhook,
        await webhook.post(webhook.alert(strat, secret=None)),
        422,
        "missing field 'secret'",
    )


async def test_disabled_strategy_is_403(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    async with webhook.sessionmaker.begin() as session:
        await session.execute(update(Strategy).where(Strategy.id == strat.id).values(enabled=False))
    await _refused(webhook, await webhook.post(webhook.alert(strat)), 403, "is disabled")


async def test_source_address_outside_the_allow_list_is_403(webhook: Webhook) -> None:
    strat = await webhook.add_strategy(allow_tradingview_ips=True)
    _, row = await _refused(
        webhook, await webhook.post(webhook.alert(strat)), 403, "127.0.0.1 is not allowed"
    )
    assert row.source_ip == "127.0.0.1"


async def test_body_over_16_kib_is_413_without_reading_it_all(webhook: Webhook) -> None:
    sent = 0

    async def chunks():  # no Content-Length: the limit must hold while streaming
        nonlocal sent
        for _ in range(20):
            sent += 1
            yield b" " * 1024

    r = await webhook.http.post("/webhook/tradingview", content=chunks())
    _, row = await _refused(webhook, r, 413, f"body larger than {MAX_BODY_BYTES} bytes")
    assert sent < 20
    assert row.body is None
    declared = await webhook.post(b" " * (20 * 1024))
    await _refused(webhook, declared, 413, "body larger than")


async def test_unknown_field_is_422_naming_it(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat, slpct="1.5"))
    _, row = await _refused(webhook, r, 422, "unknown field 'slpct'; did you mean 'sl_pct'?")
    assert row.body["slpct"] == "(unknown field: value not stored)"


async def test_missing_field_is_422_naming_it(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    await _refused(
        webhook,
        await webhook.post(webhook.alert(strat, ticker=None)),
        422,
        "missing field 'ticker'",
    )


async def test_contradictory_fields_are_422_saying_which(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat, size_usdt="100"))
    await _refused(webhook, r, 422, "contradictory fields size and size_usdt")
    r = await webhook.post(
        webhook.alert(strat, action="sell", market_position="long", prev_market_position="flat")
    )
    _, row = await _refused(webhook, r, 422, "action sell cannot take a strategy from flat to long")
    assert row.intent is None


async def test_alert_older_than_max_age_is_422(webhook: Webhook) -> None:
    strat = await webhook.add_strategy(max_alert_age_s=30)
    old = _iso(datetime.now(UTC) - timedelta(seconds=120))
    _, row = await _refused(
        webhook, await webhook.post(webhook.alert(strat, time=old)), 422, "alert too old"
    )
    assert "refuses alerts older than 30 s" in row.reason
    assert row.alert_time is not None


async def test_unknown_symbol_is_422_with_suggestions(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    r = await webhook.post(webhook.alert(strat, ticker="BTCUSDX.P"))
    _, row = await _refused(webhook, r, 422, "unknown symbol 'BTCUSDX'")
    assert "closest known: " in row.reason and "BTCUSDT" in row.reason


async def test_symbol_closed_for_new_positions_is_422(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    await _refused(
        webhook,
        await webhook.post(webhook.alert(strat, ticker="FTTUSDT")),
        422,
        "does not accept new positions",
    )


async def test_rate_limit_is_429_with_retry_after(webhook: Webhook) -> None:
    strat = await webhook.add_strategy(rate_limit_per_min=2)
    assert (await webhook.post(webhook.alert(strat))).status_code == 202
    assert (await webhook.post(webhook.alert(strat))).status_code == 202
    r = await webhook.post(webhook.alert(strat))
    await _refused(webhook, r, 429, "takes 2 alerts per minute")
    assert int(r.headers["retry-after"]) >= 1


async def test_decimal_values_reach_the_workflow_input_exactly(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    body = webhook.alert(
        strat, size=Decimal("0.012345678"), price="65000.10", tp=Decimal("70000.0")
    )
    r = await webhook.post(body)
    assert r.status_code == 202, r.text
    handle = webhook.temporal.get_workflow_handle(r.json()["workflow_id"])
    history = await handle.fetch_history()
    started = history.events[0].workflow_execution_started_event_attributes
    payload = started.input.payloads[0].data.decode()
    assert '"size":"0.012345678"' in payload.replace(" ", "")
    assert '"reference_price":"65000.10"' in payload.replace(" ", "")
    assert strat.secret not in payload


async def test_tradingview_sender_behind_a_trusted_proxy_is_allowed(
    webhook: Webhook, db_url: str
) -> None:
    import httpx

    from webhook.app import create_app
    from webhook.schemas import render_alert

    strat = await webhook.add_strategy(allow_tradingview_ips=True)
    proxied = webhook.settings.model_copy(update={"trusted_proxies": ["127.0.0.1/32"]})
    app = create_app(proxied, database_url=db_url)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://tw") as http,
    ):

        async def post(forwarded: str) -> httpx.Response:
            return await http.post(
                "/webhook/tradingview",
                content=render_alert(webhook.alert(strat)).encode(),
                headers={"X-Forwarded-For": forwarded},
            )

        allowed = await post("52.89.214.238")
        spoofed = await post("52.89.214.238, 198.51.100.7")
    assert allowed.status_code == 202, allowed.text
    assert (await webhook.signal(allowed.json()["signal_id"])).source_ip == "52.89.214.238"
    await _refused(webhook, spoofed, 403, "198.51.100.7 is not allowed")
