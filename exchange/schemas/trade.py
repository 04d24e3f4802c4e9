"""Trade endpoints: orders, cancels, fills, flash close (docs/bitunix.md#trade-endpoints)."""

from __future__ import annotations

from exchange.schemas.base import Amount, Request, Stamp, Text, Wire


class _TpSlFields(Request):
    tpPrice: str | None = None
    tpStopType: str | None = None
    tpOrderType: str | None = None
    tpOrderPrice: str | None = None
    slPrice: str | None = None
    slStopType: str | None = None
    slOrderType: str | None = None
    slOrderPrice: str | None = None


class PlaceOrderRequest(_TpSlFields):
    symbol: str
    side: str
    qty: str
    orderType: str
    price: str | None = None
    effect: str | None = None
    tradeSide: str | None = None
    positionId: str | None = None
    reduceOnly: bool | None = None
    clientId: str | None = None


class OrderIds(Wire):
    """`{orderId, clientId}`: the answer to place_order and modify_order."""

    orderId: Text
    clientId: str | None = None


class CancelTarget(Request):
    orderId: str | None = None
    clientId: str | None = None


class CancelOrdersRequest(Request):
    symbol: str
    orderList: list[CancelTarget]


class CancelAllOrdersRequest(Request):
    symbol: str | None = None


class CancelSuccess(Wire):
    orderId: Text | None = None
    clientId: str | None = None


class CancelFailure(Wire):
    orderId: Text | None = None
    clientId: str | None = None
    errorMsg: str = ""
    # Documented as a string in examples ("10013"); codes may fall outside BitUnix's
    # table (docs/bitunix.md#codes-outside-the-table).
    errorCode: int | str | None = None


class CancelOrdersResult(Wire):
    successList: list[CancelSuccess] = []
    failureList: list[CancelFailure] = []


class ModifyOrderRequest(_TpSlFields):
    symbol: str
    qty: str
    price: str
    orderId: str | None = None
    clientId: str | None = None


class Order(Wire):
    """Order object of get_order_detail, get_pending_orders and get_history_orders."""

    orderId: Text
    symbol: str
    qty: Amount
    tradeQty: Amount | None = None
    price: Amount | None = None
    avgPrice: Amount | None = None
    side: str
    orderType: str | None = None
    type: str | None = None
    effect: str | None = None
    clientId: str | None = None
    reduceOnly: bool | None = None
    status: str
    fee: Amount | None = None
    realizedPNL: Amount | None = None
    positionMode: str | None = None
    marginMode: str | None = None
    leverage: int | None = None
    tradeSide: str | None = None
    tpPrice: Amount | None = None
    tpStopType: str | None = None
    tpOrderType: str | None = None
    tpOrderPrice: Amount | None = None
    slPrice: Amount | None = None
    slStopType: str | None = None
    slOrderType: str | None = None
    slOrderPrice: Amount | None = None
    source: str | None = None
    ctime: Stamp | None = None
    mtime: Stamp | None = None


class Trade(Wire):
    """One fill of get_history_trades."""

    tradeId: Text
    orderId: Text
    symbol: str
    qty: Amount
    price: Amount
    side: str
    orderType: str | None = None
    effect: str | None = None
    clientId: str | None = None
    reduceOnly: bool | None = None
    positionMode: str | None = None
    marginMode: str | None = None
    leverage: int | None = None
    fee: Amount | None = None
    realizedPNL: Amount | None = None
    ctime: Stamp | None = None
    roleType: str | None = None


class FlashCloseRequest(Request):
    positionId: str


class PositionIdResult(Wire):
    positionId: Text | None = None
