"""Order-level and position-level TP/SL (docs/bitunix.md#tpsl-endpoints): placement rules and
triggers."""

from __future__ import annotations

from decimal import Decimal

from paper import errors
from paper.tpsl import TPSL_QTY_STRICTLY_LESS
from tests.paper.helpers import data, detail, fills, place, positions
from tests.paper.wire_client import WireClient
from tests.support.paper import PaperExchange


async def _long(api: WireClient, qty: str = "0.1") -> dict[str, str]:
    data(await place(api, side="BUY", orderType="LIMIT", qty=qty, price="95000.1"))
    (pos,) = await positions(api)
    return pos


async def _pending(api: WireClient, **params: str) -> list[dict[str, str]]:
    answer = data(await api.get("tpsl/get_pending_orders", {"symbol": "BTCUSDT", **params}))
    return answer  # type: ignore[no-any-return]


async def _history(api: WireClient) -> list[dict[str, str]]:
    answer = data(await api.get("tpsl/get_history_orders", {"symbol": "BTCUSDT"}))["orderList"]
    return answer  # type: ignore[no-any-return]


async def test_order_level_tp_triggers_with_pnl_and_fees(
    paper: PaperExchange, api: WireClient
) -> None:
    pos = await _long(api)
    placed = data(
        await api.post(
            "tpsl/place_order",
            {
                "symbol": "BTCUSDT",
                "positionId": pos["positionId"],
                "tpPrice": "96000",
                "tpStopType": "MARK_PRICE",
                "tpQty": "0.04",
                "slPrice": "94000",
                "slQty": "0.04",
            },
        )
    )
    (pending,) = await _pending(api, positionId=pos["positionId"])
    assert pending["id"] == placed["orderId"]
    assert (pending["tpPrice"], pending["tpQty"], pending["slPrice"], pending["tpOrderType"]) == (
        "96000",
        "0.04",
        "94000",
        "MARKET",
    )
    assert (pending["base"], pending["quote"]) == ("BTC", "USDT")
    await paper.admin.set_price("BTCUSDT", "95999.9")
    assert len(await _pending(api)) == 1
    await paper.admin.set_price("BTCUSDT", "96000")
    assert await _pending(api) == []
    (hist,) = await _history(api)
    assert hist["status"] == "FILLED" and isinstance(hist["triggerTime"], int)
    (remaining,) = await positions(api)
    assert remaining["qty"] == "0.06"
    closes = [
        f
        for f in data(await api.get("trade/get_history_trades", {"limit": 100}))["tradeList"]
        if Decimal(f["realizedPNL"]) != 0
    ]
    (close,) = closes
    assert close["price"] == "95999.9" and close["roleType"] == "TAKER"
    assert Decimal(close["realizedPNL"]) == (Decimal("95999.9") - Decimal("95000.1")) * Decimal(
        "0.04"
    )
    assert Decimal(close["fee"]) == Decimal("0.04") * Decimal("95999.9") * Decimal("0.0006")
    assert Decimal(remaining["realizedPNL"]) == Decimal(close["realizedPNL"])


async def test_tpsl_qty_boundary_30038(api: WireClient) -> None:
    pos = await _long(api)
    whole = await api.post(
        "tpsl/place_order",
        {"symbol": "BTCUSDT", "positionId": pos["positionId"], "slPrice": "94000", "slQty": "0.1"},
    )
    assert whole["code"] == (errors.TPSL_QTY_TOO_LARGE if TPSL_QTY_STRICTLY_LESS else 0)
    more = await api.post(
        "tpsl/place_order",
        {
            "symbol": "BTCUSDT",
            "positionId": pos["positionId"],
            "slPrice": "94000",
            "slQty": "0.1001",
        },
    )
    assert more["code"] == errors.TPSL_QTY_TOO_LARGE == 30038
    data(
        await api.post(
            "tpsl/place_order",
            {
                "symbol": "BTCUSDT",
                "positionId": pos["positionId"],
                "slPrice": "94000",
                "slQty": "0.0999",
            },
        )
    )


async def test_placement_rules(api: WireClient) -> None:
    pos = await _long(api)
    base = {"symbol": "BTCUSDT", "positionId": pos["positionId"]}
    assert (await api.post("tpsl/place_order", base))["code"] == errors.SELECT_TP_OR_SL
    tp_low = await api.post("tpsl/place_order", {**base, "tpPrice": "94000", "tpQty": "0.01"})
    assert tp_low["code"] == errors.TP_ABOVE_MARK == 30020
    sl_high = await api.post("tpsl/place_order", {**base, "slPrice": "96000", "slQty": "0.01"})
    assert sl_high["code"] == errors.SL_BELOW_MARK == 30023
    off_grid = await api.post("tpsl/place_order", {**base, "tpPrice": "96000.05", "tpQty": "0.01"})
    assert off_grid["code"] == errors.OFF_GRID_CODE
    no_qty = await api.post("tpsl/place_order", {**base, "tpPrice": "96000"})
    assert no_qty["code"] == errors.PARAMETER_ERROR
    no_pos = await api.post(
        "tpsl/place_order", {**base, "positionId": "1", "tpPrice": "96000", "tpQty": "0.01"}
    )
    assert no_pos["code"] == errors.POSITION_NOT_EXIST


async def test_short_direction_codes(api: WireClient) -> None:
    data(await place(api, side="SELL", qty="0.1"))
    (pos,) = await positions(api)
    base = {"symbol": "BTCUSDT", "positionId": pos["positionId"]}
    assert (await api.post("tpsl/position/place_order", {**base, "tpPrice": "96000"}))["code"] == (
        errors.TP_BELOW_MARK
    )
    assert (await api.post("tpsl/position/place_order", {**base, "slPrice": "94000"}))["code"] == (
        errors.SL_ABOVE_MARK
    )


async def test_position_level_sl_closes_everything_once(
    paper: PaperExchange, api: WireClient
) -> None:
    pos = await _long(api)
    base = {"symbol": "BTCUSDT", "positionId": pos["positionId"]}
    placed = data(
        await api.post(
            "tpsl/position/place_order", {**base, "slPrice": "94000", "slStopType": "LAST_PRICE"}
        )
    )
    second = await api.post("tpsl/position/place_order", {**base, "tpPrice": "99000"})
    assert second["code"] == errors.POSITION_TPSL_EXISTS_CODE
    data(
        await api.post(
            "tpsl/position/modify_order", {**base, "slPrice": "94500", "tpPrice": "99000"}
        )
    )
    (pending,) = await _pending(api)
    assert (pending["id"], pending["slPrice"], pending["tpPrice"]) == (
        placed["orderId"],
        "94500",
        "99000",
    )
    assert pending["tpQty"] is None
    await paper.admin.set_price("BTCUSDT", "94500")
    assert await positions(api) == []
    (hist,) = data(await api.get("position/get_history_positions", {}))["positionList"]
    assert Decimal(hist["realizedPNL"]) == (Decimal("94499.9") - Decimal("95000.1")) * Decimal(
        "0.1"
    )
    assert hist["closePrice"] == "94499.9"
    assert [h["status"] for h in await _history(api)] == ["FILLED"]


async def test_modify_and_cancel(api: WireClient) -> None:
    pos = await _long(api)
    placed = data(
        await api.post(
            "tpsl/place_order",
            {
                "symbol": "BTCUSDT",
                "positionId": pos["positionId"],
                "tpPrice": "97000",
                "tpQty": "0.05",
            },
        )
    )
    data(
        await api.post(
            "tpsl/modify_order",
            {
                "orderId": placed["orderId"],
                "tpPrice": "98000",
                "tpQty": "0.06",
                "tpOrderType": "LIMIT",
                "tpOrderPrice": "97990",
            },
        )
    )
    (pending,) = await _pending(api)
    assert (pending["tpPrice"], pending["tpQty"], pending["tpOrderPrice"]) == (
        "98000",
        "0.06",
        "97990",
    )
    assert data(
        await api.post("tpsl/cancel_order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]})
    ) == {"orderId": placed["orderId"]}
    assert await _pending(api) == []
    again = await api.post("tpsl/cancel_order", {"symbol": "BTCUSDT", "orderId": placed["orderId"]})
    assert again["code"] == errors.ORDER_NOT_OPEN_CODE
    missing = await api.post("tpsl/cancel_order", {"symbol": "BTCUSDT", "orderId": "5"})
    assert missing["code"] == errors.ORDER_NOT_FOUND


async def test_limit_leg_rests_then_fills(paper: PaperExchange, api: WireClient) -> None:
    pos = await _long(api)
    data(
        await api.post(
            "tpsl/place_order",
            {
                "symbol": "BTCUSDT",
                "positionId": pos["positionId"],
                "tpPrice": "96000",
                "tpQty": "0.05",
                "tpOrderType": "LIMIT",
                "tpOrderPrice": "96100",
            },
        )
    )
    await paper.admin.set_price("BTCUSDT", "96000")
    (order,) = data(await api.get("trade/get_pending_orders", {}))["orderList"]
    assert (order["price"], order["qty"], order["reduceOnly"], order["side"]) == (
        "96100",
        "0.05",
        True,
        "SELL",
    )
    await paper.admin.set_price("BTCUSDT", "96100")
    assert (await detail(api, order["orderId"]))["status"] == "FILLED"
    assert (await positions(api))[0]["qty"] == "0.05"


async def test_position_close_system_cancels_its_tpsl(api: WireClient) -> None:
    pos = await _long(api)
    data(
        await api.post(
            "tpsl/place_order",
            {
                "symbol": "BTCUSDT",
                "positionId": pos["positionId"],
                "slPrice": "90000",
                "slQty": "0.05",
            },
        )
    )
    data(await api.post("trade/flash_close_position", {"positionId": pos["positionId"]}))
    assert await _pending(api) == []
    assert [h["status"] for h in await _history(api)] == ["SYSTEM_CANCELED"]


async def test_attached_tp_becomes_order_level_tpsl(paper: PaperExchange, api: WireClient) -> None:
    answer = data(
        await place(
            api, side="BUY", qty="0.02", tpPrice="97000", tpStopType="MARK_PRICE", slPrice="93000"
        )
    )
    order = await detail(api, answer["orderId"])
    assert (order["tpPrice"], order["slPrice"]) == ("97000", "93000")
    (pending,) = await _pending(api)
    assert (pending["tpQty"], pending["slQty"]) == ("0.02", "0.02")
    await paper.admin.set_price("BTCUSDT", "93000")
    assert await positions(api) == []
    assert sum(Decimal(f["qty"]) for f in await fills(api, answer["orderId"])) == Decimal("0.02")


async def test_hedge_mode_tpsl_on_short(paper: PaperExchange, api: WireClient) -> None:
    data(await api.post("account/change_position_mode", {"positionMode": "HEDGE"}))
    data(await place(api, side="SELL", tradeSide="OPEN", qty="0.1"))
    data(await place(api, side="BUY", tradeSide="OPEN", qty="0.1"))
    short = next(p for p in await positions(api) if p["side"] == "SHORT")
    data(
        await api.post(
            "tpsl/place_order",
            {
                "symbol": "BTCUSDT",
                "positionId": short["positionId"],
                "tpPrice": "94000",
                "tpQty": "0.03",
            },
        )
    )
    await paper.admin.set_price("BTCUSDT", "94000")
    held = {p["side"]: p["qty"] for p in await positions(api)}
    assert held == {"SHORT": "0.07", "LONG": "0.1"}
    close = data(await api.get("trade/get_history_orders", {"symbol": "BTCUSDT"}))["orderList"][0]
    assert (close["side"], close["qty"], close["source"]) == ("SELL", "0.03", "tpsl")
