"""Liquidation: automatic when the mark crosses the liq price, and through the admin API."""

from __future__ import annotations

from decimal import Decimal

from paper.ledger import MAINT_MARGIN_RATE
from tests.paper.helpers import available, data, place, positions
from tests.paper.wire_client import WireClient
from tests.support.paper import PaperExchange


async def _isolated_long(api: WireClient) -> dict[str, str]:
    data(
        await api.post(
            "account/change_margin_mode",
            {"symbol": "BTCUSDT", "marginCoin": "USDT", "marginMode": "ISOLATION"},
        )
    )
    data(await place(api, side="BUY", orderType="LIMIT", qty="0.1", price="95000.1"))
    (pos,) = await positions(api)
    return pos


async def test_isolated_long_is_liquidated_when_price_crosses(
    paper: PaperExchange, api: WireClient
) -> None:
    start = await available(api)
    pos = await _isolated_long(api)
    expected = (Decimal("95000.1") * (1 - Decimal(1) / 20) / (1 - MAINT_MARGIN_RATE)).quantize(
        Decimal("0.1")
    )
    assert Decimal(pos["liqPrice"]) == expected
    tpsl = data(
        await api.post(
            "tpsl/position/place_order",
            {"symbol": "BTCUSDT", "positionId": pos["positionId"], "tpPrice": "99000"},
        )
    )
    await paper.admin.set_price("BTCUSDT", expected + Decimal("0.1"))
    assert len(await positions(api)) == 1
    await paper.admin.set_price("BTCUSDT", expected - 100)
    assert await positions(api) == []
    (hist,) = data(await api.get("position/get_history_positions", {}))["positionList"]
    assert (hist["liqQty"], hist["closePrice"]) == ("0.1", format(expected - 100, "f"))
    assert Decimal(hist["realizedPNL"]) == (expected - 100 - Decimal("95000.1")) * Decimal("0.1")
    fees = Decimal("0.1") * (Decimal("95000.1") + expected - 100) * Decimal("0.0006")
    assert await available(api) == start + Decimal(hist["realizedPNL"]) - fees
    (cancelled,) = data(await api.get("tpsl/get_history_orders", {}))["orderList"]
    assert (cancelled["id"], cancelled["status"]) == (tpsl["orderId"], "SYSTEM_CANCELED")


async def test_admin_liquidate_closes_at_the_mark(paper: PaperExchange, api: WireClient) -> None:
    pos = await _isolated_long(api)
    await paper.admin.set_price("BTCUSDT", "93000")
    assert await paper.admin.liquidate("BTCUSDT", "LONG") == [pos["positionId"]]
    assert await positions(api) == []
    (hist,) = data(await api.get("position/get_history_positions", {}))["positionList"]
    assert (hist["liqQty"], hist["liqPrice"], hist["closePrice"]) == (
        "0.1",
        pos["liqPrice"],
        "93000",
    )
    assert Decimal(hist["realizedPNL"]) == (Decimal("93000") - Decimal("95000.1")) * Decimal("0.1")
    liquidation = data(await api.get("trade/get_history_orders", {}))["orderList"][0]
    assert (liquidation["source"], liquidation["status"]) == ("liquidation", "FILLED")


async def test_cross_position_without_liq_price_liquidates_at_mark(
    paper: PaperExchange, api: WireClient
) -> None:
    data(await place(api, symbol="ETHUSDT", side="SELL", qty="1"))
    (pos,) = await positions(api, "ETHUSDT")
    assert pos["marginMode"] == "CROSS"
    await paper.admin.set_price("ETHUSDT", "3500")
    assert await paper.admin.liquidate("ETHUSDT") == [pos["positionId"]]
    (hist,) = data(await api.get("position/get_history_positions", {"symbol": "ETHUSDT"}))[
        "positionList"
    ]
    assert (hist["closePrice"], hist["liqQty"]) == ("3500", "1")
