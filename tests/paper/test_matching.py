"""Market and limit matching, post-only, IOC/FOK, partial fills, order lookup and cancel."""

from __future__ import annotations

from decimal import Decimal

import pytest

from paper import errors
from tests.paper.helpers import data, detail, fills, place
from tests.paper.wire_client import WireClient
from tests.support.paper import PaperExchange, run_paper_exchange


async def _book(api: WireClient, symbol: str = "BTCUSDT") -> dict[str, list[list[str]]]:
    answer = data(await api.public("market/depth", {"symbol": symbol, "limit": "5"}))
    return answer  # type: ignore[no-any-return]


async def test_market_buy_walks_the_asks(api: WireClient) -> None:
    asks = (await _book(api))["asks"]
    first = Decimal(asks[0][1])
    part = Decimal("0.01")
    qty = first + part
    answer = data(await place(api, side="BUY", qty=format(qty, "f"), clientId="mkt-1"))
    order = await detail(api, answer["orderId"])
    assert order["status"] == "FILLED" and Decimal(order["tradeQty"]) == qty
    got = sorted(
        (f["price"], Decimal(f["qty"]), f["roleType"]) for f in await fills(api, answer["orderId"])
    )
    assert got == [(asks[0][0], first, "TAKER"), (asks[1][0], part, "TAKER")]
    fee = sum(Decimal(f["fee"]) for f in await fills(api, answer["orderId"]))
    expected = (first * Decimal(asks[0][0]) + part * Decimal(asks[1][0])) * Decimal("0.0006")
    assert fee == expected == Decimal(order["fee"])


async def test_marketable_limit_fills_at_once_as_taker(api: WireClient) -> None:
    ask = (await _book(api))["asks"][0][0]
    answer = data(await place(api, side="BUY", orderType="LIMIT", qty="0.01", price="95010"))
    order = await detail(api, answer["orderId"])
    assert order["status"] == "FILLED" and order["avgPrice"] == ask
    assert [f["roleType"] for f in await fills(api, answer["orderId"])] == ["TAKER"]


async def test_resting_limit_fills_as_maker_when_price_reaches_it(
    paper: PaperExchange, api: WireClient
) -> None:
    answer = data(await place(api, side="BUY", orderType="LIMIT", qty="0.01", price="94900"))
    assert (await detail(api, answer["orderId"]))["status"] == "NEW"
    await paper.admin.set_price("BTCUSDT", "94950")
    assert (await detail(api, answer["orderId"]))["status"] == "NEW"
    await paper.admin.set_price("BTCUSDT", "94900")
    order = await detail(api, answer["orderId"])
    assert order["status"] == "FILLED" and order["avgPrice"] == "94900"
    (fill,) = await fills(api, answer["orderId"])
    assert fill["roleType"] == "MAKER" and Decimal(fill["fee"]) == Decimal(
        "0.01"
    ) * 94900 * Decimal("0.0002")


async def test_post_only_that_would_take_is_cancelled_by_default(api: WireClient) -> None:
    answer = data(
        await place(
            api, side="BUY", orderType="LIMIT", effect="POST_ONLY", qty="0.01", price="95000.1"
        )
    )
    order = await detail(api, answer["orderId"])
    assert order["status"] == "CANCELED" and order["tradeQty"] == "0"
    resting = data(
        await place(
            api, side="BUY", orderType="LIMIT", effect="POST_ONLY", qty="0.01", price="94999.9"
        )
    )
    assert (await detail(api, resting["orderId"]))["status"] == "NEW"


async def test_post_only_reject_mode(paper: PaperExchange, api: WireClient) -> None:
    await paper.admin.faults(post_only_mode="reject")
    answer = await place(
        api,
        side="SELL",
        orderType="LIMIT",
        effect="POST_ONLY",
        qty="0.01",
        price="94999.9",
        clientId="po-1",
    )
    assert answer["code"] == errors.POST_ONLY_REJECT_CODE
    # A rejected order does not exist, so its clientId is still free.
    lookup = await api.get("trade/get_order_detail", {"clientId": "po-1"})
    assert lookup["code"] == errors.ORDER_NOT_FOUND


async def test_post_only_reject_mode_from_settings() -> None:
    async with run_paper_exchange(paper_post_only_mode="reject") as paper:
        client = WireClient(paper.base_url, paper.api_key, paper.api_secret)
        try:
            answer = await place(
                client,
                side="BUY",
                orderType="LIMIT",
                effect="POST_ONLY",
                qty="0.01",
                price="95000.1",
            )
        finally:
            await client.aclose()
    assert answer["code"] == errors.POST_ONLY_REJECT_CODE


async def test_ioc_fills_what_it_can_and_cancels_the_rest(api: WireClient) -> None:
    ask0 = (await _book(api))["asks"][0]
    qty = Decimal(ask0[1]) + 1
    answer = data(
        await place(
            api, side="BUY", orderType="LIMIT", effect="IOC", qty=format(qty, "f"), price=ask0[0]
        )
    )
    order = await detail(api, answer["orderId"])
    assert order["status"] == "PART_FILLED_CANCELED" and order["tradeQty"] == ask0[1]


async def test_fok_fills_all_or_nothing(api: WireClient) -> None:
    ask0 = (await _book(api))["asks"][0]
    too_much = data(
        await place(
            api,
            side="BUY",
            orderType="LIMIT",
            effect="FOK",
            qty=format(Decimal(ask0[1]) + 1, "f"),
            price=ask0[0],
        )
    )
    assert (await detail(api, too_much["orderId"]))["status"] == "CANCELED"
    exact = data(
        await place(api, side="BUY", orderType="LIMIT", effect="FOK", qty=ask0[1], price=ask0[0])
    )
    assert (await detail(api, exact["orderId"]))["status"] == "FILLED"


async def test_partial_fills_in_two_parts_across_moves() -> None:
    async with run_paper_exchange(paper_partial_fills=True) as paper:
        client = WireClient(paper.base_url, paper.api_key, paper.api_secret)
        try:
            answer = data(
                await place(client, side="SELL", orderType="LIMIT", qty="0.0101", price="95100")
            )
            await paper.admin.set_price("BTCUSDT", "95100")
            first = await detail(client, answer["orderId"])
            await paper.admin.move("BTCUSDT", 1)
            second = await detail(client, answer["orderId"])
            parts = [Decimal(f["qty"]) for f in await fills(client, answer["orderId"])]
        finally:
            await client.aclose()
    assert (first["status"], first["tradeQty"]) == ("PART_FILLED", "0.005")
    assert (second["status"], second["tradeQty"]) == ("FILLED", "0.0101")
    assert sorted(parts) == [Decimal("0.005"), Decimal("0.0051")]


async def test_detail_by_order_id_or_client_id(api: WireClient) -> None:
    answer = data(
        await place(
            api, side="BUY", orderType="LIMIT", qty="0.002", price="90000", clientId="look-1"
        )
    )
    by_id = await detail(api, answer["orderId"])
    by_client = data(await api.get("trade/get_order_detail", {"clientId": "look-1"}))
    assert by_id == by_client
    assert by_id["leverage"] == 20 and isinstance(by_id["ctime"], int)
    assert (by_id["qty"], by_id["price"], by_id["clientId"]) == ("0.002", "90000", "look-1")
    unknown = await api.get("trade/get_order_detail", {"orderId": "123"})
    assert unknown["code"] == errors.ORDER_NOT_FOUND == 20007
    assert (await api.get("trade/get_order_detail", {"clientId": "nope"}))["code"] == 20007


async def test_cancel_open_and_filled_orders(api: WireClient) -> None:
    resting = data(
        await place(
            api, side="BUY", orderType="LIMIT", qty="0.002", price="90000", clientId="c-open"
        )
    )
    filled = data(await place(api, side="BUY", qty="0.002", clientId="c-filled"))
    answer = data(
        await api.post(
            "trade/cancel_orders",
            {
                "symbol": "BTCUSDT",
                "orderList": [
                    {"clientId": "c-open"},
                    {"orderId": filled["orderId"]},
                    {"orderId": "42"},
                ],
            },
        )
    )
    assert answer["successList"] == [{"orderId": resting["orderId"], "clientId": "c-open"}]
    failed = {f["orderId"]: f for f in answer["failureList"]}
    assert failed[filled["orderId"]]["errorCode"] == str(errors.CANCEL_TERMINAL_ERROR_CODE)
    assert failed["42"]["errorCode"] == "20007"
    assert (await detail(api, resting["orderId"]))["status"] == "CANCELED"


async def test_cancel_all_and_pending_and_history_lists(api: WireClient) -> None:
    ids = [
        data(await place(api, side="BUY", orderType="LIMIT", qty="0.001", price=str(90000 + i)))[
            "orderId"
        ]
        for i in range(3)
    ]
    pending = data(await api.get("trade/get_pending_orders", {"symbol": "BTCUSDT"}))
    assert pending["total"] == 3 and [o["orderId"] for o in pending["orderList"]] == ids[::-1]
    page = data(
        await api.get("trade/get_pending_orders", {"symbol": "BTCUSDT", "skip": 1, "limit": 1})
    )
    assert [o["orderId"] for o in page["orderList"]] == [ids[1]] and page["total"] == 3
    answer = data(await api.post("trade/cancel_all_orders", {"symbol": "BTCUSDT"}))
    assert sorted(o["orderId"] for o in answer["successList"]) == sorted(ids)
    assert data(await api.get("trade/get_pending_orders", {}))["total"] == 0
    cancelled = data(await api.get("trade/get_history_orders", {"queryCanceled": "true"}))
    assert cancelled["total"] == 3
    assert data(await api.get("trade/get_history_orders", {}))["total"] == 0


async def test_modify_order(api: WireClient) -> None:
    answer = data(
        await place(api, side="BUY", orderType="LIMIT", qty="0.002", price="90000", clientId="m-1")
    )
    data(
        await api.post("trade/modify_order", {"clientId": "m-1", "qty": "0.003", "price": "90100"})
    )
    order = await detail(api, answer["orderId"])
    assert (order["qty"], order["price"], order["status"]) == ("0.003", "90100", "NEW")
    data(
        await api.post(
            "trade/modify_order", {"orderId": answer["orderId"], "qty": "0.003", "price": "95100"}
        )
    )
    assert (await detail(api, answer["orderId"]))["status"] == "FILLED"
    again = await api.post(
        "trade/modify_order", {"orderId": answer["orderId"], "qty": "0.004", "price": "90000"}
    )
    assert again["code"] == errors.ORDER_NOT_OPEN_CODE


@pytest.mark.parametrize(
    "symbol,qty",
    [("SHIBUSDT", "410000"), ("1000PEPEUSDT", "570"), ("YFIUSDT", "0.0007"), ("BTCUSDC", "0.0002")],
)
async def test_fills_on_every_kind_of_grid(api: WireClient, symbol: str, qty: str) -> None:
    answer = data(await place(api, symbol=symbol, side="BUY", qty=qty))
    order = await detail(api, answer["orderId"])
    assert order["status"] == "FILLED" and order["tradeQty"] == qty
    coin = "USDC" if symbol.endswith("USDC") else "USDT"
    account = data(await api.get("account", {"marginCoin": coin}))[0]
    assert Decimal(account["margin"]) > 0
