"""Positions in ONE_WAY and HEDGE mode (docs/bitunix.md#position-modes), leverage/margin/position
mode."""

from __future__ import annotations

from decimal import Decimal

from paper import errors
from tests.paper.helpers import available, data, detail, fills, place, positions
from tests.paper.wire_client import WireClient
from tests.support.paper import PaperExchange


async def _hedge(api: WireClient) -> None:
    data(await api.post("account/change_position_mode", {"positionMode": "HEDGE"}))


async def test_one_way_reduce_only_rules(api: WireClient) -> None:
    none = await place(api, side="SELL", qty="0.01", reduceOnly=True)
    assert none["code"] == errors.REDUCE_ONLY_NO_POSITION == 30018
    data(await place(api, side="BUY", qty="0.01"))
    same = await place(api, side="BUY", qty="0.01", reduceOnly=True)
    assert same["code"] == errors.REDUCE_ONLY_SAME_DIRECTION == 30019
    # A hedge-style close (BUY+CLOSE for a long) sent in one-way mode is refused, not opened.
    hedge_style = await place(api, side="BUY", qty="0.01", tradeSide="CLOSE")
    assert hedge_style["code"] == 30019


async def test_one_way_close_below_min_qty_and_clipped(
    paper: PaperExchange, api: WireClient
) -> None:
    await paper.admin.set_price("DOGEUSDT", "0.2")
    data(await place(api, symbol="DOGEUSDT", side="BUY", qty="60"))
    # minTradeVolume (53) does not bind a close; a close larger than the position is clipped.
    data(await place(api, symbol="DOGEUSDT", side="SELL", qty="7", reduceOnly=True))
    assert (await positions(api, "DOGEUSDT"))[0]["qty"] == "53"
    clipped = data(await place(api, symbol="DOGEUSDT", side="SELL", qty="100", reduceOnly=True))
    order = await detail(api, clipped["orderId"])
    assert (order["tradeQty"], order["status"]) == ("53", "PART_FILLED_CANCELED")
    assert await positions(api, "DOGEUSDT") == []


async def test_one_way_opposite_order_nets_and_flips(paper: PaperExchange, api: WireClient) -> None:
    data(await place(api, side="BUY", qty="0.02"))
    (long_pos,) = await positions(api)
    data(await place(api, side="SELL", qty="0.05"))
    (short_pos,) = await positions(api)
    assert short_pos["side"] == "SHORT" and short_pos["qty"] == "0.03"
    assert short_pos["positionId"] != long_pos["positionId"]
    history = data(await api.get("position/get_history_positions", {"symbol": "BTCUSDT"}))
    assert [p["positionId"] for p in history["positionList"]] == [long_pos["positionId"]]
    assert history["positionList"][0]["maxQty"] == "0.02"


async def test_one_way_round_trip_realized_pnl_and_fees(
    paper: PaperExchange, api: WireClient
) -> None:
    start = await available(api)
    buy = data(await place(api, side="BUY", orderType="LIMIT", qty="0.1", price="95000.1"))
    await paper.admin.set_price("BTCUSDT", "96000")
    sell = data(
        await place(
            api, side="SELL", orderType="LIMIT", qty="0.1", price="95999.9", reduceOnly=True
        )
    )
    (close_fill,) = await fills(api, sell["orderId"])
    assert Decimal(close_fill["realizedPNL"]) == (
        Decimal("95999.9") - Decimal("95000.1")
    ) * Decimal("0.1")
    fees = Decimal("0.1") * (Decimal("95000.1") + Decimal("95999.9")) * Decimal("0.0006")
    assert Decimal((await detail(api, buy["orderId"]))["fee"]) + Decimal(close_fill["fee"]) == fees
    assert await available(api) == start + Decimal(close_fill["realizedPNL"]) - fees
    (hist,) = data(await api.get("position/get_history_positions", {}))["positionList"]
    assert (hist["entryPrice"], hist["closePrice"]) == ("95000.1", "95999.9")
    assert Decimal(hist["realizedPNL"]) == Decimal("99.98") and Decimal(hist["fee"]) == fees


async def test_hedge_open_and_close_rules(api: WireClient) -> None:
    await _hedge(api)
    data(await place(api, side="BUY", tradeSide="OPEN", qty="0.02"))
    data(await place(api, side="SELL", tradeSide="OPEN", qty="0.01"))
    held = {p["side"]: p for p in await positions(api)}
    assert (held["LONG"]["qty"], held["SHORT"]["qty"]) == ("0.02", "0.01")
    assert held["LONG"]["positionMode"] == "HEDGE"
    no_id = await place(api, side="BUY", tradeSide="CLOSE", qty="0.01")
    assert no_id["code"] == errors.PARAMETER_ERROR
    wrong = await place(
        api, side="SELL", tradeSide="CLOSE", qty="0.01", positionId=held["LONG"]["positionId"]
    )
    assert wrong["code"] == errors.POSITION_NOT_EXIST
    # Close long = BUY + CLOSE: `side` names the position; the fill is a sell.
    close = data(
        await place(
            api, side="BUY", tradeSide="CLOSE", qty="0.005", positionId=held["LONG"]["positionId"]
        )
    )
    bids = data(await api.public("market/depth", {"symbol": "BTCUSDT", "limit": "1"}))["bids"]
    (fill,) = await fills(api, close["orderId"])
    assert fill["price"] == bids[0][0] and fill["side"] == "BUY"
    held = {p["side"]: p for p in await positions(api)}
    assert (held["LONG"]["qty"], held["SHORT"]["qty"]) == ("0.015", "0.01")
    data(
        await place(
            api, side="SELL", tradeSide="CLOSE", qty="0.01", positionId=held["SHORT"]["positionId"]
        )
    )
    assert [p["side"] for p in await positions(api)] == ["LONG"]


async def test_position_mode_change_refused_with_exposure(api: WireClient) -> None:
    data(await place(api, side="BUY", orderType="LIMIT", qty="0.001", price="90000"))
    answer = await api.post("account/change_position_mode", {"positionMode": "HEDGE"})
    assert answer["code"] == errors.POSITION_MODE_LOCKED == 20009
    data(await api.post("trade/cancel_all_orders", {}))
    await _hedge(api)
    account = data(await api.get("account", {"marginCoin": "USDT"}))[0]
    assert account["positionMode"] == "HEDGE"


async def test_leverage_and_margin_mode_refused_with_an_open_order(api: WireClient) -> None:
    body = {"symbol": "ETHUSDT", "marginCoin": "USDT"}
    assert data(await api.get("account/get_leverage_margin_mode", body)) == {
        "symbol": "ETHUSDT",
        "marginCoin": "USDT",
        "leverage": 20,
        "marginMode": "CROSS",
    }
    data(await api.post("account/change_leverage", {**body, "leverage": 10}))
    data(
        await place(api, symbol="ETHUSDT", side="BUY", orderType="LIMIT", qty="0.01", price="3300")
    )
    refused = await api.post("account/change_leverage", {**body, "leverage": 5})
    assert refused["code"] == errors.OPEN_ORDERS_OR_POSITION == 20006
    mode = await api.post("account/change_margin_mode", {**body, "marginMode": "ISOLATION"})
    assert mode["code"] == 20006
    # Asking for the leverage it already has is fine.
    assert data(await api.post("account/change_leverage", {**body, "leverage": 10})) == [
        {"symbol": "ETHUSDT", "marginCoin": "USDT", "leverage": 10}
    ]
    invalid = await api.post("account/change_leverage", {**body, "leverage": 101})
    assert invalid["code"] == errors.INVALID_LEVERAGE
    data(await api.post("trade/cancel_all_orders", {"symbol": "ETHUSDT"}))
    data(await api.post("account/change_margin_mode", {**body, "marginMode": "ISOLATION"}))


async def test_margin_uses_the_symbol_leverage(paper: PaperExchange, api: WireClient) -> None:
    data(
        await api.post(
            "account/change_leverage", {"symbol": "BTCUSDT", "marginCoin": "USDT", "leverage": 10}
        )
    )
    data(await place(api, side="BUY", orderType="LIMIT", qty="0.1", price="95000.1"))
    (pos,) = await positions(api)
    assert pos["leverage"] == 10 and Decimal(pos["margin"]) == Decimal("950.001")
    assert Decimal(pos["entryValue"]) == Decimal("9500.01") and pos["avgOpenPrice"] == "95000.1"


async def test_frozen_margin_of_a_resting_order(api: WireClient) -> None:
    start = await available(api)
    data(await place(api, side="BUY", orderType="LIMIT", qty="1", price="90000"))
    account = data(await api.get("account", {"marginCoin": "USDT"}))[0]
    assert Decimal(account["frozen"]) == Decimal("4500")
    assert Decimal(account["available"]) == start - 4500


async def test_flash_close_and_close_all(api: WireClient) -> None:
    await _hedge(api)
    data(await place(api, side="BUY", tradeSide="OPEN", qty="0.02"))
    data(await place(api, side="SELL", tradeSide="OPEN", qty="0.02"))
    data(await place(api, symbol="ETHUSDT", side="BUY", tradeSide="OPEN", qty="0.1"))
    long_id = next(p["positionId"] for p in await positions(api) if p["side"] == "LONG")
    assert data(await api.post("trade/flash_close_position", {"positionId": long_id})) == {
        "positionId": long_id
    }
    assert [p["side"] for p in await positions(api)] == ["SHORT"]
    unknown = await api.post("trade/flash_close_position", {"positionId": long_id})
    assert unknown["code"] == errors.POSITION_NOT_EXIST
    assert data(await api.post("trade/close_all_position", {"symbol": "BTCUSDT"})) == ""
    assert await positions(api) == [] and len(await positions(api, "ETHUSDT")) == 1
    assert data(await api.post("trade/close_all_position", {})) == ""
    assert data(await api.get("position/get_pending_positions", {})) == []
