"""The incidents API: admin token required; list with filters and pages; show; dismiss recorded
on the incident; /healthz counts the open ones. The rows are written by the watcher's own code
(activities.incidents.IncidentBook) into the real database."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

import pytest_asyncio
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from activities.incidents import IncidentBook, Mismatch, quantity_mismatches
from db.models import Incident
from trading.types import IncidentKind, PositionSide

from .conftest import TOKEN, Webhook

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@dataclass
class Rows:
    unowned: int  # open, BTCUSDT LONG
    orphan: int  # open, ETHUSDT
    resolved: int  # DOGEUSDT SHORT, balanced again


def orphan(order_id: str) -> Mismatch:
    return Mismatch(f"orphan_order:{order_id}", IncidentKind.ORPHAN_ORDER, "ETHUSDT", None,
                    Decimal("0.5"), Decimal(0), f"working order {order_id} belongs to no open trade",
                    order_id=order_id, client_order_id="TWXYZ")


async def raise_incidents(sessionmaker: async_sessionmaker[AsyncSession]) -> Rows:
    """Three incidents as the watcher writes them: two open, one resolved."""
    book = IncidentBook(sessionmaker)
    found = {m.fingerprint: m for m in [
        *quantity_mismatches({("BTCUSDT", PositionSide.LONG): Decimal("0.02"),
                              ("DOGEUSDT", PositionSide.SHORT): Decimal("100")}, {}),
        orphan("778899"),
    ]}
    now = datetime.now(UTC)
    raised = await book.apply(found, {fp: (m, now) for fp, m in found.items()})
    ids = {r.symbol: r.id for r in raised.raised}
    doge = "unowned_quantity:DOGEUSDT:SHORT"
    await book.apply({fp: m for fp, m in found.items() if fp != doge},
                     {fp: (m, now) for fp, m in found.items() if fp != doge})
    return Rows(ids["BTCUSDT"], ids["ETHUSDT"], ids["DOGEUSDT"])


@pytest_asyncio.fixture
async def rows(webhook: Webhook) -> AsyncIterator[Rows]:
    """This test's incidents; none before or after (the database is shared with other tests,
    and /healthz's tests expect no open incident)."""
    async with webhook.sessionmaker.begin() as session:
        await session.execute(delete(Incident))
    try:
        yield await raise_incidents(webhook.sessionmaker)
    finally:
        async with webhook.sessionmaker.begin() as session:
            await session.execute(delete(Incident))


async def test_every_incidents_endpoint_needs_the_admin_token(webhook: Webhook) -> None:
    for method, path in (("GET", "/incidents"), ("GET", "/incidents/1"),
                         ("POST", "/incidents/1/dismiss")):
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = await webhook.http.request(method, path, headers=headers, json={"note": "x"})
            assert r.status_code == 401, (method, path, headers)
            assert "admin token required" in r.json()["detail"]


async def test_list_filters_by_status_and_symbol_and_pages(webhook: Webhook, rows: Rows) -> None:
    async def ids(**params: object) -> list[int]:
        r = await webhook.http.get("/incidents", params=params, headers=AUTH)
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["incidents"]]

    assert await ids() == [rows.orphan, rows.unowned]  # open ones by default, newest first
    assert await ids(status="resolved") == [rows.resolved]
    assert await ids(status="all") == sorted([rows.resolved, rows.orphan, rows.unowned], reverse=True)
    assert await ids(status="all", symbol="btcusdt") == [rows.unowned]
    page = (await webhook.http.get("/incidents", params={"limit": 1}, headers=AUTH)).json()
    assert [i["id"] for i in page["incidents"]] == [rows.orphan]
    assert page["next_before"] == rows.orphan and page["open"] == 2
    assert await ids(before=page["next_before"]) == [rows.unowned]
    first = page["incidents"][0]
    assert (first["kind"], first["side"], first["order_id"], first["exchange_qty"]) == (
        "orphan_order", None, "778899", "0.5")
    assert first["actions"][0]["by"] == "watcher" and first["actions"][0]["action"] == "report"
    bad = await webhook.http.get("/incidents", params={"status": "closed"}, headers=AUTH)
    assert bad.status_code == 422


async def test_show_one_incident(webhook: Webhook, rows: Rows) -> None:
    r = await webhook.http.get(f"/incidents/{rows.resolved}", headers=AUTH)
    body = r.json()
    assert (body["status"], body["resolution"], body["symbol"], body["side"]) == (
        "resolved", "balanced again", "DOGEUSDT", "SHORT")
    assert body["cleared_at"] is not None
    assert [a["action"] for a in body["actions"]] == ["report", "resolve"]
    missing = await webhook.http.get("/incidents/987654321", headers=AUTH)
    assert missing.status_code == 404 and missing.json()["detail"] == "no incident #987654321"


async def test_dismiss_records_who_when_and_why_and_only_once(webhook: Webhook, rows: Rows) -> None:
    for body in ({}, {"note": "   "}, {"note": "ok", "flatten": True}):
        r = await webhook.http.post(f"/incidents/{rows.unowned}/dismiss", json=body, headers=AUTH)
        assert r.status_code == 422, body
    before = datetime.now(UTC)
    r = await webhook.http.post(f"/incidents/{rows.unowned}/dismiss", headers=AUTH,
                                json={"note": "  a manual position I keep  "})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["status"], body["resolution"]) == (
        "dismissed", "dismissed by operator: a manual position I keep")
    action = body["actions"][-1]
    assert (action["by"], action["action"], action["note"]) == (
        "operator", "dismiss", "a manual position I keep")
    assert datetime.fromisoformat(action["at"]) >= before
    assert body["cleared_at"] is None  # dismissed, and the mismatch still lasts
    listed = (await webhook.http.get("/incidents", headers=AUTH)).json()
    assert [i["id"] for i in listed["incidents"]] == [rows.orphan] and listed["open"] == 1

    twice = await webhook.http.post(f"/incidents/{rows.unowned}/dismiss", headers=AUTH,
                                    json={"note": "again"})
    assert twice.status_code == 409 and "is dismissed, not open" in twice.json()["detail"]
    resolved = await webhook.http.post(f"/incidents/{rows.resolved}/dismiss", headers=AUTH,
                                       json={"note": "late"})
    assert resolved.status_code == 409
    nobody = await webhook.http.post("/incidents/987654321/dismiss", headers=AUTH,
                                     json={"note": "x"})
    assert nobody.status_code == 404


async def test_healthz_is_degraded_while_incidents_are_open(webhook: Webhook, rows: Rows) -> None:
    public = await webhook.http.get("/healthz")
    assert (public.status_code, public.json()) == (200, {"status": "up"})  # nothing counted
    admin = await webhook.http.get("/healthz", headers=AUTH)
    assert admin.status_code == 200
    assert (admin.json()["status"], admin.json()["incidents"]) == ("degraded", 2)
    strict = await webhook.http.get("/healthz", params={"strict": "true"})
    assert (strict.status_code, strict.json()) == (503, {"status": "down"})
    strict = await webhook.http.get("/healthz", params={"strict": "true"}, headers=AUTH)
    assert strict.status_code == 503 and strict.json()["status"] == "degraded"
    for incident_id in (rows.unowned, rows.orphan):
        await webhook.http.post(f"/incidents/{incident_id}/dismiss", headers=AUTH,
                                json={"note": "known"})
    after = await webhook.http.get("/healthz", params={"strict": "true"}, headers=AUTH)
    assert after.status_code == 200
    assert (after.json()["status"], after.json()["incidents"]) == ("ok", 0)
