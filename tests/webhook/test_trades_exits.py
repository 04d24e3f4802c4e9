"""`PATCH /trades/{id}` (docs/design.md#exits): a running trade's exits moved through the admin
API on real parts (PostgreSQL, the Temporal dev server with a worker, the paper exchange over
HTTP): auth, the body's checks, the trade's own refusal (422, nothing changed), 404, 409 on a
finished trade, and a move that reaches the exchange's TP/SL and shows in GET /trades/{id}."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import httpx
from pydantic import SecretStr

from tests.workflows.conftest import harness, task_queue, wf_db, wf_paper  # noqa: F401
from tests.workflows.harness import Harness
from trading.types import TradeStatus
from webhook.app import create_app
from workflows.contract import Sizing
from workflows.messages import CancelRequest
from workflows.trade import TradeWorkflow

TOKEN = "test-admin-token-trades-exits-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
BTC = "BTCUSDT"
QTY = Decimal("0.0100")


@asynccontextmanager
async def webhook(h: Harness, tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    settings = h.settings.model_copy(update={
        "admin_token": SecretStr(TOKEN), "fast_path": False, "state_dir": tmp_path,
    })
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://tw") as http:
            yield http


def protected(s) -> bool:
    return s.status is TradeStatus.TRACKING and s.protection.order_id is not None


async def protected_trade(h: Harness) -> tuple[object, int]:
    await h.paper.admin.set_price(BTC, "95000")
    handle = await h.trade(sizing=Sizing(size=QTY), tp=Decimal("99000"), sl=Decimal("90000"))
    st = await h.until_state(handle, protected, "protected")
    return handle, st.trade_id


async def tpsl(h: Harness) -> tuple[Decimal | None, Decimal | None]:
    [order] = await h.exchange.pending_tpsl_orders(BTC)
    return order.tp_price, order.sl_price


async def test_patch_needs_the_admin_token_and_names_a_bad_field(
    harness: Harness, tmp_path: Path  # noqa: F811
) -> None:
    async with webhook(harness, tmp_path) as api:
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
            r = await api.patch("/trades/1", json={"sl": "90000"}, headers=headers)
            assert r.status_code == 401 and "admin token required" in r.json()["detail"]
        r = await api.patch("/trades/987654321", json={"sl": "90000"}, headers=AUTH)
        assert r.status_code == 404 and r.json()["detail"] == "no trade #987654321"
        for body, where, why in (
            ({"sl": "90000", "slpct": "2"}, ["body", "slpct"], "Extra inputs"),
            ({"sl": "-1"}, ["body", "sl"], "greater than 0"),
            ({"sl": 90000.5}, ["body", "sl"], "not float"),  # a JSON float may lose digits: quoted
            ({"tps": [{"pct": "1", "price": "99000"}]}, ["body", "tps", 0], "exactly one of"),
            ({"tps": [{"pct": "1", "size": "2"}]}, ["body", "tps", 0, "size"], "Extra inputs"),
            ({"trail_pct": "100"}, ["body", "trail_pct"], "less than 100"),
            ({"sl_after_tp": "sideways"}, ["body", "sl_after_tp"], "breakeven"),
        ):
            r = await api.patch("/trades/1", json=body, headers=AUTH)
            assert r.status_code == 422, (body, r.text)
            named = [e["msg"].lower() for e in r.json()["detail"]
                     if e["loc"][:len(where)] == where]  # a union says why per alternative
            assert any(why.lower() in msg for msg in named), (body, r.text)
        r = await api.patch("/trades/1", json={}, headers=AUTH)
        assert r.status_code == 422 and "give at least one of sl, tp, tps" in r.json()["detail"]
        r = await api.patch("/trades/1", json={"sl": None}, headers=AUTH)
        assert r.status_code == 422 and "sl can be moved, not removed" in r.json()["detail"]


async def test_patch_moves_a_running_trades_exits_or_says_why_not(
    harness: Harness, tmp_path: Path  # noqa: F811
) -> None:
    h = harness
    handle, trade_id = await protected_trade(h)
    async with webhook(h, tmp_path) as api:
        # Refused by the trade before acceptance: 422 with its reason, nothing moved.
        r = await api.patch(f"/trades/{trade_id}", json={"sl": "96000"}, headers=AUTH)
        assert r.status_code == 422 and "below the current price" in r.json()["detail"], r.text
        r = await api.patch(f"/trades/{trade_id}", json={"tps": [{"price": "94000"}]},
                            headers=AUTH)
        assert r.status_code == 422 and "take-profit level 1" in r.json()["detail"], r.text
        r = await api.patch(f"/trades/{trade_id}",
                            json={"tps": [{"pct": "1", "qty_pct": "70"}, {"pct": "2", "qty_pct": "40"}]},
                            headers=AUTH)
        assert r.status_code == 422 and "more than 100" in r.json()["detail"], r.text
        assert await tpsl(h) == (Decimal("99000"), Decimal("90000"))

        # Moved: the exchange's TP/SL, the answer, the trade row, and GET /trades/{id}.
        r = await api.patch(f"/trades/{trade_id}", headers=AUTH, json={
            "sl": "92000", "tp": "98000", "trail_pct": "1.5", "trail_activation_pct": "1",
            "trail_price": " LAST"})  # as in an alert: any case
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["applied"] is True and body["trade_id"] == trade_id
        assert (Decimal(body["protection"]["tp"]), Decimal(body["protection"]["sl"])) == (
            Decimal("98000"), Decimal("92000"))
        assert body["plan"] == {"tps": [], "trail": {
            "pct": "1.5", "activation_pct": "1", "activation_price": None,
            "price_type": "LAST_PRICE"}}
        assert await tpsl(h) == (Decimal("98000"), Decimal("92000"))
        row = await h.trade_row(handle)
        assert (row.tp_price, row.sl_price) == (Decimal("98000"), Decimal("92000"))
        shown = (await api.get(f"/trades/{trade_id}", headers=AUTH)).json()
        assert shown["exits"]["plan"] == body["plan"]
        assert Decimal(shown["exits"]["protection"]["sl"]) == Decimal("92000")

        # JSON null takes the trail out; what the body leaves out stays.
        r = await api.patch(f"/trades/{trade_id}", json={"trail_pct": None}, headers=AUTH)
        assert r.status_code == 200 and r.json()["plan"] is None, r.text
        assert Decimal(r.json()["protection"]["sl"]) == Decimal("92000")

        await handle.signal(TradeWorkflow.cancel, CancelRequest(flatten=True))
        assert (await h.result(handle)).status is TradeStatus.CANCELLED
        r = await api.patch(f"/trades/{trade_id}", json={"sl": "91000"}, headers=AUTH)
        assert r.status_code == 409 and "has already ended (CANCELLED)" in r.json()["detail"]
        assert await h.position_qty() == 0
