"""Faults that act between reads: `price_after` (a price set right after one request is
answered), `visibility_delay_ms` on TP/SL orders and `position_lag_ms` on positions, over
real HTTP."""

from __future__ import annotations

import asyncio

from tests.paper.helpers import data, detail, place, positions
from tests.paper.wire_client import WireClient
from tests.support.paper import PaperAdminError, PaperExchange
from tests.support.waiting import eventually


async def test_price_after_moves_the_price_once_right_after_the_named_read(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.set_price("BTCUSDT", "95000")
    data(await place(api, side="BUY", qty="0.01"))
    limit = data(await place(api, side="BUY", qty="0.02", orderType="LIMIT", price="94000"))
    await paper.admin.faults(price_after={"path": "position/get_pending_positions",
                                          "symbol": "BTCUSDT", "price": "94000"})
    data(await api.get("account", {"marginCoin": "USDT"}))  # another path: nothing happens
    (before,) = await positions(api)  # answered before the price moved
    assert before["qty"] == "0.01"
    order = data(await api.get("trade/get_order_detail", {"orderId": limit["orderId"]}))
    assert order["status"] == "FILLED"  # the limit filled right after that read
    (after,) = await positions(api)
    assert after["qty"] == "0.03"
    assert (await paper.admin.state())["faults"]["price_after"] is None  # fired once


async def test_price_after_refuses_a_bad_spec(paper: PaperExchange) -> None:
    for bad in ({"path": "x"}, {"path": "x", "symbol": "BTCUSDT", "price": "-1"}, "x"):
        try:
            await paper.admin.faults(price_after=bad)
        except PaperAdminError as exc:
            assert "price_after" in str(exc)
        else:
            raise AssertionError(f"accepted {bad!r}")


async def test_a_new_tpsl_is_listed_only_after_the_visibility_delay(
    paper: PaperExchange, api: WireClient
) -> None:
    data(await place(api, side="BUY", qty="0.1"))
    (pos,) = await positions(api)
    await paper.admin.faults(visibility_delay_ms=300)
    body = {"symbol": "BTCUSDT", "positionId": pos["positionId"], "slPrice": "1000",
            "slQty": "0.01"}
    data(await api.post("tpsl/place_order", body))
    query = {"symbol": "BTCUSDT", "positionId": pos["positionId"]}
    assert data(await api.get("tpsl/get_pending_orders", query)) == []
    await asyncio.sleep(0.35)
    assert len(data(await api.get("tpsl/get_pending_orders", query))) == 1


async def test_position_reads_lag_the_fills_by_position_lag_ms(
    paper: PaperExchange, api: WireClient
) -> None:
    """BitUnix's positions may lag its orders: with `position_lag_ms`, a fill shows in order
    detail at once and in the position only after the lag, both ways (an opening and a
    closing fill), and a position opened within the lag is not shown yet."""
    data(await place(api, side="BUY", qty="0.01"))  # before the fault: shown at once
    await paper.admin.faults(position_lag_ms=2000)
    more = data(await place(api, side="BUY", qty="0.02"))
    assert (await detail(api, more["orderId"]))["status"] == "FILLED"
    (pos,) = await positions(api)
    assert pos["qty"] == "0.01" and pos["avgOpenPrice"] is not None
    data(await place(api, symbol="ETHUSDT", side="BUY", qty="0.1"))
    assert await positions(api, "ETHUSDT") == []

    async def shows(symbol: str, qty: str) -> bool:
        return [p["qty"] for p in await positions(api, symbol)] == [qty]
    await eventually(lambda: shows("BTCUSDT", "0.03"), "the added 0.02 shown")
    await eventually(lambda: shows("ETHUSDT", "0.1"), "the new position shown")

    data(await place(api, side="SELL", qty="0.03", reduceOnly=True))  # closes it
    assert await shows("BTCUSDT", "0.03")  # still shown, within the lag
    await eventually(lambda: _flat(api), "the closed position gone")
    await paper.admin.clear_faults()  # without the fault a fill shows at once
    data(await place(api, side="BUY", qty="0.01"))
    assert await shows("BTCUSDT", "0.01")


async def _flat(api: WireClient) -> bool:
    return await positions(api) == []
async def _fired_tpsl(paper: PaperExchange, api: WireClient) -> tuple[str, str]:
    """A long 0.1 whose order-level TP of 0.01 fires: (position id, TP/SL id)."""
    await paper.admin.set_price("BTCUSDT", "95000")
    data(await place(api, side="BUY", qty="0.1"))
    (pos,) = await positions(api)
    body = {"symbol": "BTCUSDT", "positionId": pos["positionId"], "tpPrice": "96000",
            "tpQty": "0.01"}
    tpsl = data(await api.post("tpsl/place_order", body))["orderId"]
    await paper.admin.set_price("BTCUSDT", "96100")
    return pos["positionId"], tpsl


async def test_a_tpsl_that_ended_is_in_its_history_only_after_the_history_delay(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.faults(tpsl_history_delay_ms=400)
    position, tpsl = await _fired_tpsl(paper, api)
    query = {"symbol": "BTCUSDT", "positionId": position}
    assert data(await api.get("tpsl/get_pending_orders", query)) == []
    assert data(await api.get("tpsl/get_history_orders", query))["orderList"] == []
    await asyncio.sleep(0.45)
    [fired] = data(await api.get("tpsl/get_history_orders", query))["orderList"]
    assert (fired["id"], fired["status"]) == (tpsl, "FILLED")


async def test_the_fills_of_a_tpsl_close_are_listed_only_after_the_fill_delay(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.faults(tpsl_fill_delay_ms=400)
    position, _ = await _fired_tpsl(paper, api)
    query = {"symbol": "BTCUSDT", "positionId": position, "limit": 100}
    listed = data(await api.get("trade/get_history_trades", query))["tradeList"]
    assert [f["qty"] for f in listed] == ["0.1"]  # the entry's fill; the TP's close not yet
    await asyncio.sleep(0.45)
    listed = data(await api.get("trade/get_history_trades", query))["tradeList"]
    assert [f["qty"] for f in listed] == ["0.01", "0.1"]  # newest first


async def test_faults_after_arms_more_faults_once_right_after_the_named_request(
    paper: PaperExchange, api: WireClient
) -> None:
    data(await place(api, side="BUY", qty="0.1"))
    (pos,) = await positions(api)
    await paper.admin.faults(faults_after={"path": "tpsl/place_order",
                                           "faults": {"http_5xx": 2}})
    body = {"symbol": "BTCUSDT", "positionId": pos["positionId"], "slPrice": "1000",
            "slQty": "0.01"}
    data(await api.post("tpsl/place_order", body))  # answered; the outage starts after it
    query = {"symbol": "BTCUSDT", "positionId": pos["positionId"]}
    for _ in range(2):
        assert (await api.get_raw("tpsl/get_pending_orders", query)).status_code == 503
    assert len(data(await api.get("tpsl/get_pending_orders", query))) == 1
    faults = (await paper.admin.state())["faults"]
    assert faults["faults_after"] is None and faults["http_5xx"] == 0


async def test_faults_after_refuses_a_bad_spec(paper: PaperExchange) -> None:
    for bad in ({"path": "x"}, {"path": "x", "faults": {"nope": 1}},
                {"path": "x", "faults": {"faults_after": None}}, "x"):
        try:
            await paper.admin.faults(faults_after=bad)
        except PaperAdminError as exc:
            assert "faults_after" in str(exc)
        else:
            raise AssertionError(f"accepted {bad!r}")
