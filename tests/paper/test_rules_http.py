"""The exchange-side rule check answered over HTTP with BitUnix's codes."""

from __future__ import annotations

import pytest

from paper import errors
from paper.rules import CLIENT_ID_MAX_LEN
from tests.paper.helpers import data, place
from tests.paper.wire_client import WireClient
from tests.support.paper import PaperExchange


@pytest.mark.parametrize(
    ("symbol", "qty"),
    [("BTCUSDT", "0.00015"), ("DOGEUSDT", "53.5"), ("SOLUSDT", "1.001"), ("ESPUSDT", "17.35")],
)
async def test_off_grid_qty_is_refused(api: WireClient, symbol: str, qty: str) -> None:
    answer = await place(api, symbol=symbol, side="BUY", qty=qty)
    assert answer["code"] == errors.OFF_GRID_CODE


@pytest.mark.parametrize(
    ("symbol", "price"),
    [("BTCUSDT", "95000.05"), ("SHIBUSDT", "0.000012345"), ("YFIUSDT", "5480.5")],
)
async def test_off_grid_price_is_refused(api: WireClient, symbol: str, price: str) -> None:
    qty = {"BTCUSDT": "0.001", "SHIBUSDT": "410000", "YFIUSDT": "0.001"}[symbol]
    answer = await place(api, symbol=symbol, side="BUY", orderType="LIMIT", qty=qty, price=price)
    assert answer["code"] == errors.OFF_GRID_CODE


async def test_trailing_zeros_are_on_the_grid(api: WireClient) -> None:
    answer = await place(
        api, symbol="BTCUSDT", side="BUY", orderType="LIMIT", qty="0.00100", price="90000.00"
    )
    data(answer)


async def test_min_qty_is_not_a_power_of_ten(api: WireClient) -> None:
    assert (await place(api, symbol="DOGEUSDT", side="BUY", qty="52"))["code"] == errors.MIN_QTY
    data(await place(api, symbol="DOGEUSDT", side="BUY", qty="53"))


async def test_max_limit_and_market_qty(api: WireClient) -> None:
    limit = await place(
        api, symbol="BTCUSDC", side="BUY", orderType="LIMIT", qty="500.0001", price="90000"
    )
    assert limit["code"] == errors.MAX_LIMIT_QTY == 30039
    market = await place(api, symbol="BTCUSDC", side="BUY", qty="100.0001")
    assert market["code"] == errors.MAX_MARKET_QTY == 30013


async def test_price_band_from_the_mark(paper: PaperExchange, api: WireClient) -> None:
    await paper.admin.set_price("BTCUSDT", "100000")  # priceProtectScope 0.02
    high = await place(api, side="BUY", orderType="LIMIT", qty="0.001", price="102000.1")
    assert high["code"] == errors.MAX_BUY_PRICE == 30014
    low = await place(api, side="SELL", orderType="LIMIT", qty="0.001", price="97999.9")
    assert low["code"] == errors.MIN_SELL_PRICE == 30015
    data(await place(api, side="BUY", orderType="LIMIT", qty="0.001", price="98000"))
    data(await place(api, side="SELL", orderType="LIMIT", qty="0.001", price="102000"))


async def test_cancel_only_refuses_openings_but_allows_closes(
    paper: PaperExchange, api: WireClient
) -> None:
    answer = await place(api, symbol="ALPACAUSDT", side="BUY", qty="21")
    assert answer["code"] == errors.SYMBOL_STATUS_CODE
    data(await place(api, symbol="BTCUSDT", side="BUY", qty="0.01"))
    await paper.admin.symbol_status("BTCUSDT", "CANCEL_ONLY")
    assert (await place(api, side="BUY", qty="0.01"))["code"] == errors.SYMBOL_STATUS_CODE
    close = await place(api, side="SELL", qty="0.01", reduceOnly=True)
    data(close)
    pairs = data(await api.public("market/trading_pairs", {"symbols": "BTCUSDT"}))
    assert pairs[0]["symbolStatus"] == "CANCEL_ONLY"


@pytest.mark.parametrize("symbol", ["FTTUSDT", "MONUSDT"])
async def test_stop_and_preview_refuse_every_order(api: WireClient, symbol: str) -> None:
    answer = await place(api, symbol=symbol, side="BUY", qty="100")
    assert answer["code"] == errors.SYMBOL_STATUS_CODE


async def test_not_api_supported_is_refused(api: WireClient) -> None:
    answer = await place(api, symbol="TRUMPUSDT", side="BUY", qty="1")
    assert answer["code"] == errors.NOT_API_SUPPORTED_CODE


async def test_unknown_symbol_is_20001(api: WireClient) -> None:
    assert (await place(api, symbol="NOPEUSDT", side="BUY", qty="1"))["code"] == 20001


async def test_client_id_duplicate_forever_and_length(api: WireClient) -> None:
    data(await place(api, side="BUY", qty="0.001", clientId="dup-1"))
    again = await place(api, side="BUY", qty="0.001", clientId="dup-1")
    assert again["code"] == errors.CLIENT_ID_DUPLICATE == 30042
    too_long = await place(api, side="BUY", qty="0.001", clientId="x" * (CLIENT_ID_MAX_LEN + 1))
    assert too_long["code"] == errors.PARAMETER_ERROR
    data(await place(api, side="BUY", qty="0.001", clientId="y" * CLIENT_ID_MAX_LEN))


async def test_numbers_as_json_numbers_parse_exactly(api: WireClient) -> None:
    body = '{"symbol":"BTCUSDT","side":"BUY","orderType":"LIMIT","qty":0.001,"price":90000.1}'
    answer = data(await api.post("trade/place_order", body))
    order = data(await api.get("trade/get_order_detail", {"orderId": answer["orderId"]}))
    assert (order["qty"], order["price"]) == ("0.001", "90000.1")


async def test_insufficient_balance_is_20003(api: WireClient) -> None:
    # 100000 USDT at leverage 20 opens at most ~2M notional: 30 BTC ≈ 2.85M.
    assert (await place(api, side="BUY", qty="30"))["code"] == errors.INSUFFICIENT_BALANCE
