"""Every fault mode of the admin API, over real HTTP."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest

from paper import errors
from tests.paper.helpers import data, detail, place, positions
from tests.paper.wire_client import PREFIX, WireClient
from tests.support.paper import PaperAdminError, PaperExchange

ACCOUNT = ("account", {"marginCoin": "USDT"})


async def test_latency_is_added_before_processing(paper: PaperExchange, api: WireClient) -> None:
    await paper.admin.faults(latency_ms=150)
    started = time.monotonic()
    data(await api.get(*ACCOUNT))
    assert time.monotonic() - started >= 0.15
    data(await api.public("market/tickers", {"symbols": "BTCUSDT"}))  # public: no latency
    await paper.admin.clear_faults()


async def test_error_rate_one_answers_500_on_private_only(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.faults(error_rate="1")
    assert (await api.get_raw(*ACCOUNT)).status_code == 500
    data(await api.public("market/tickers", {"symbols": "BTCUSDT"}))
    await paper.admin.faults(error_rate="0")
    data(await api.get(*ACCOUNT))


async def test_rate_limit_fault_answers_10006_n_times(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.faults(rate_limit=2)
    codes = [(await api.get(*ACCOUNT))["code"] for _ in range(3)]
    assert codes == [10006, 10006, 0]


async def test_http_5xx_then_recovers(paper: PaperExchange, api: WireClient) -> None:
    await paper.admin.faults(http_5xx=1)
    assert (await api.get_raw(*ACCOUNT)).status_code == 503
    data(await api.get(*ACCOUNT))


async def test_network_error_is_10001_under_http_200_and_not_processed(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.faults(network_error=1)
    response = await api.post_raw(
        "trade/place_order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "orderType": "MARKET",
            "qty": "0.01",
            "clientId": "net-1",
        },
    )
    assert response.status_code == 200 and response.json()["code"] == errors.NETWORK_ERROR
    lookup = await api.get("trade/get_order_detail", {"clientId": "net-1"})
    assert lookup["code"] == errors.ORDER_NOT_FOUND


async def test_drop_order_response_504_after_execution(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.faults(drop_response={"target": "order", "count": 1, "mode": "http_504"})
    response = await api.post_raw(
        "trade/place_order",
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "orderType": "MARKET",
            "qty": "0.01",
            "clientId": "drop-1",
        },
    )
    assert response.status_code == 504
    order = data(await api.get("trade/get_order_detail", {"clientId": "drop-1"}))
    assert order["status"] == "FILLED"
    resend = await place(api, side="BUY", qty="0.01", clientId="drop-1")
    assert resend["code"] == errors.CLIENT_ID_DUPLICATE
    data(await place(api, side="BUY", qty="0.01", clientId="drop-2"))  # count was 1


async def test_drop_tpsl_response_504_after_execution(
    paper: PaperExchange, api: WireClient
) -> None:
    data(await place(api, side="BUY", qty="0.1"))
    (pos,) = await positions(api)
    await paper.admin.faults(drop_response={"target": "tpsl", "count": 2, "mode": "http_504"})
    body = {"symbol": "BTCUSDT", "positionId": pos["positionId"], "slPrice": "90000"}
    assert (await api.post_raw("tpsl/position/place_order", body)).status_code == 504
    assert (await api.post_raw("tpsl/place_order", {**body, "slQty": "0.01"})).status_code == 504
    pending = data(await api.get("tpsl/get_pending_orders", {"positionId": pos["positionId"]}))
    assert len(pending) == 2


async def test_drop_response_hang_withholds_the_answer(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.faults(drop_response={"target": "order", "count": 1, "mode": "hang"})
    body = '{"symbol":"BTCUSDT","side":"BUY","orderType":"MARKET","qty":"0.01","clientId":"hang-1"}'
    with pytest.raises(httpx.ReadTimeout):
        await api.http.post(
            PREFIX + "trade/place_order", content=body, headers=api.headers("", body), timeout=0.5
        )
    assert (
        data(await api.get("trade/get_order_detail", {"clientId": "hang-1"}))["status"] == "FILLED"
    )


async def test_visibility_delay_answers_20007_until_visible(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.faults(visibility_delay_ms=400)
    answer = data(
        await place(
            api, side="BUY", orderType="LIMIT", qty="0.01", price="90000", clientId="late-1"
        )
    )
    first = await api.get("trade/get_order_detail", {"orderId": answer["orderId"]})
    assert first["code"] == errors.ORDER_NOT_FOUND
    assert data(await api.get("trade/get_pending_orders", {}))["total"] == 0
    for _ in range(200):  # poll: visible once the delay has passed
        found = await api.get("trade/get_order_detail", {"clientId": "late-1"})
        if found["code"] == 0:
            break
        await asyncio.sleep(0.02)
    assert found["code"] == 0 and found["data"]["status"] == "NEW"


async def test_cancel_fill_race_fills_then_reports_failure(
    paper: PaperExchange, api: WireClient
) -> None:
    answer = data(await place(api, side="BUY", orderType="LIMIT", qty="0.01", price="90000"))
    await paper.admin.faults(cancel_fill_race=True)
    result = data(
        await api.post(
            "trade/cancel_orders",
            {"symbol": "BTCUSDT", "orderList": [{"orderId": answer["orderId"]}]},
        )
    )
    assert result["successList"] == []
    assert result["failureList"][0]["errorCode"] == "10013"
    order = await detail(api, answer["orderId"])
    assert (order["status"], order["avgPrice"]) == ("FILLED", "90000")


async def test_cancel_only_through_admin_and_bad_fault_bodies(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.symbol_status("ETHUSDT", "CANCEL_ONLY")
    assert (await place(api, symbol="ETHUSDT", side="BUY", qty="0.01"))["code"] == 20012
    with pytest.raises(PaperAdminError, match="error_rate"):
        await paper.admin.faults(error_rate="2")
    with pytest.raises(PaperAdminError, match="unknown fault"):
        await paper.admin.faults(latency=5)
    await paper.admin.reset()
    data(await place(api, symbol="ETHUSDT", side="BUY", qty="0.01"))


@pytest.mark.parametrize(
    ("host", "allowed"),
    [("127.0.0.1", True), ("::1", True), ("10.1.2.3", False), ("192.168.1.5", False)],
)
def test_admin_is_loopback_only(host: str, allowed: bool) -> None:
    from fastapi import HTTPException
    from starlette.requests import Request

    from paper.admin import _loopback_only

    request = Request(
        {
            "type": "http",
            "client": (host, 5000),
            "headers": [],
            "method": "GET",
            "path": "/__admin/health",
            "query_string": b"",
        }
    )
    if allowed:
        _loopback_only(request)
    else:
        with pytest.raises(HTTPException) as refused:
            _loopback_only(request)
        assert refused.value.status_code == 403


async def test_omit_avg_price_answers_orders_as_bitunix_documents_them(
    paper: PaperExchange, api: WireClient
) -> None:
    answer = data(await place(api, side="BUY", qty="0.01"))
    assert (await detail(api, answer["orderId"]))["avgPrice"] is not None
    await paper.admin.faults(omit_avg_price=True)
    order = await detail(api, answer["orderId"])
    assert "avgPrice" not in order and order["status"] == "FILLED"
    history = data(await api.get("trade/get_history_orders", {"symbol": "BTCUSDT"}))
    assert all("avgPrice" not in o for o in history["orderList"])
    fills = data(await api.get("trade/get_history_trades", {"orderId": answer["orderId"]}))
    assert fills["tradeList"] and all(f["price"] for f in fills["tradeList"])
    await paper.admin.clear_faults()
    assert (await detail(api, answer["orderId"]))["avgPrice"] is not None
