"""Small helpers shared by the simulator tests."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from tests.paper.wire_client import WireClient


def data(answer: dict[str, Any]) -> Any:
    """The `data` of a successful envelope (fails the test with the answer otherwise)."""
    assert answer["code"] == 0, answer
    assert answer["msg"] == "Success"
    return answer["data"]


async def place(api: WireClient, **fields: Any) -> dict[str, Any]:
    """place_order with defaults symbol=BTCUSDT, orderType=MARKET; returns the envelope."""
    body = {"symbol": "BTCUSDT", "orderType": "MARKET", **fields}
    return await api.post("trade/place_order", body)


async def detail(api: WireClient, order_id: str) -> dict[str, Any]:
    answer = data(await api.get("trade/get_order_detail", {"orderId": order_id}))
    return answer  # type: ignore[no-any-return]


async def positions(api: WireClient, symbol: str = "BTCUSDT") -> list[dict[str, Any]]:
    answer = data(await api.get("position/get_pending_positions", {"symbol": symbol}))
    return answer  # type: ignore[no-any-return]


async def available(api: WireClient, coin: str = "USDT") -> Decimal:
    return Decimal(data(await api.get("account", {"marginCoin": coin}))[0]["available"])


async def fills(api: WireClient, order_id: str) -> list[dict[str, Any]]:
    answer = data(await api.get("trade/get_history_trades", {"orderId": order_id, "limit": 100}))
    return answer["tradeList"]  # type: ignore[no-any-return]
