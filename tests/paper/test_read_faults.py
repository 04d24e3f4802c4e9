"""Faults that act between reads: `price_after` (a price set right after one request is
answered) and `visibility_delay_ms` on TP/SL orders, over real HTTP."""

from __future__ import annotations

import asyncio

from tests.paper.helpers import data, place, positions
from tests.paper.wire_client import WireClient
from tests.support.paper import PaperAdminError, PaperExchange


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
