"""The trades API: admin token required; list with filters and pages; show; cancel."""

from __future__ import annotations

import json

from sqlalchemy import update
from temporalio.api.enums.v1 import EventType

from db.models import Trade
from webhook.strategies import describe

from .conftest import TOKEN, Webhook

AUTH = {"Authorization": f"Bearer {TOKEN}"}


async def _open(webhook: Webhook, strat, **fields) -> dict:
    r = await webhook.post(webhook.alert(strat, **fields))
    assert r.status_code == 202, r.text
    return r.json()


async def test_every_trades_endpoint_needs_the_admin_token(webhook: Webhook) -> None:
    for method, path in (("GET", "/trades"), ("GET", "/trades/1"), ("POST", "/trades/1/cancel")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = await webhook.http.request(method, path, headers=headers)
            assert r.status_code == 401, (method, path, headers)
            assert "admin token required" in r.json()["detail"]


async def test_list_filters_and_pages(webhook: Webhook) -> None:
    strat, other = await webhook.add_strategy(), await webhook.add_strategy()
    mine = [await _open(webhook, strat, ticker=t) for t in ("BTCUSDT", "ETHUSDT", "BTCUSDT")]
    await _open(webhook, other)
    r = await webhook.http.get("/trades", params={"strategy": strat.name}, headers=AUTH)
    assert [t["id"] for t in r.json()["trades"]] == [m["trade_id"] for m in reversed(mine)]
    first = r.json()["trades"][0]
    assert first["strategy"] == strat.name and first["status"] == "PENDING"
    assert first["filled_qty"] == "0" and first["ui_url"].endswith(first["workflow_id"])
    r = await webhook.http.get(
        "/trades", params={"strategy": strat.name, "symbol": "btcusdt"}, headers=AUTH
    )
    assert [t["id"] for t in r.json()["trades"]] == [mine[2]["trade_id"], mine[0]["trade_id"]]
    page1 = (
        await webhook.http.get("/trades", params={"strategy": strat.name, "limit": 2}, headers=AUTH)
    ).json()
    assert len(page1["trades"]) == 2 and page1["next_before"] == mine[1]["trade_id"]
    page2 = (
        await webhook.http.get(
            "/trades",
            params={"strategy": strat.name, "limit": 2, "before": page1["next_before"]},
            headers=AUTH,
        )
    ).json()
    assert [t["id"] for t in page2["trades"]] == [mine[0]["trade_id"]] and page2[
        "next_before"
    ] is None
    r = await webhook.http.get(
        "/trades", params={"strategy": strat.name, "status": "CLOSED"}, headers=AUTH
    )
    assert r.json()["trades"] == []
    assert (
        await webhook.http.get("/trades", params={"status": "DONE"}, headers=AUTH)
    ).status_code == 422


async def test_show_has_row_orders_fills_and_the_state_query_outcome(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    opened = await _open(webhook, strat)
    r = await webhook.http.get(f"/trades/{opened['trade_id']}", headers=AUTH)
    assert r.status_code == 200
    body = r.json()
    assert (body["id"], body["workflow_id"], body["orders"], body["fills"]) == (
        opened["trade_id"],
        opened["workflow_id"],
        [],
        [],
    )
    # No worker runs this test's task queue, so the live query cannot be answered: said, not hidden.
    assert body["state"] is None and body["state_error"].startswith("state query failed")
    assert (await webhook.http.get("/trades/999999999", headers=AUTH)).status_code == 404


async def test_cancel_signals_the_workflow_and_refuses_ended_trades(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    opened = await _open(webhook, strat)
    r = await webhook.http.post(
        f"/trades/{opened['trade_id']}/cancel", json={"flatten": True}, headers=AUTH
    )
    assert r.status_code == 202, r.text
    assert r.json()["flatten"] is True
    history = await webhook.temporal.get_workflow_handle(opened["workflow_id"]).fetch_history()
    signals = [
        (
            e.workflow_execution_signaled_event_attributes.signal_name,
            json.loads(e.workflow_execution_signaled_event_attributes.input.payloads[0].data),
        )
        for e in history.events
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED
    ]
    assert signals == [("cancel", {"flatten": True, "reason": None})]
    assert (
        await webhook.http.post(f"/trades/{opened['trade_id']}/cancel", headers=AUTH)
    ).status_code == 202
    assert (
        await webhook.http.post(
            f"/trades/{opened['trade_id']}/cancel", json={"flaten": True}, headers=AUTH
        )
    ).status_code == 422
    async with webhook.sessionmaker.begin() as session:
        await session.execute(
            update(Trade).where(Trade.id == opened["trade_id"]).values(status="CANCELLED")
        )
    ended = await webhook.http.post(f"/trades/{opened['trade_id']}/cancel", headers=AUTH)
    assert ended.status_code == 409 and "already ended (CANCELLED)" in ended.json()["detail"]


async def test_docs_are_served_only_when_enabled(webhook: Webhook, db_url: str) -> None:
    assert (await webhook.http.get("/openapi.json")).status_code == 200
    from webhook.app import create_app

    app = create_app(
        webhook.settings.model_copy(update={"docs_enabled": False}), database_url=db_url
    )
    import httpx

    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://tw"
    ) as http:
        assert (await http.get("/openapi.json")).status_code == 404
        assert (await http.get("/docs")).status_code == 404


async def test_strategy_description_never_shows_the_secret(webhook: Webhook) -> None:
    strat = await webhook.add_strategy()
    from webhook import strategies

    shown = describe(await strategies.get(webhook.sessionmaker, strat.name))
    assert strat.secret not in str(shown) and shown["secret"].startswith("set (HMAC stored")
