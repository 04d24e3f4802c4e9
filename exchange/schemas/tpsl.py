"""TP/SL endpoints (docs/bitunix.md#tpsl-endpoints)."""

from __future__ import annotations

from exchange.schemas.base import Amount, Request, Stamp, Text, Wire


class TpslPlaceRequest(Request):
    symbol: str
    positionId: str
    tpPrice: str | None = None
    tpStopType: str | None = None
    tpOrderType: str | None = None
    tpOrderPrice: str | None = None
    tpQty: str | None = None
    slPrice: str | None = None
    slStopType: str | None = None
    slOrderType: str | None = None
    slOrderPrice: str | None = None
    slQty: str | None = None


class TpslModifyRequest(Request):
    orderId: str
    tpPrice: str | None = None
    tpStopType: str | None = None
    tpOrderType: str | None = None
    tpOrderPrice: str | None = None
    tpQty: str | None = None
    slPrice: str | None = None
    slStopType: str | None = None
    slOrderType: str | None = None
    slOrderPrice: str | None = None
    slQty: str | None = None


class PositionTpslRequest(Request):
    """Body of tpsl/position/place_order and tpsl/position/modify_order."""

    symbol: str
    positionId: str
    tpPrice: str | None = None
    tpStopType: str | None = None
    slPrice: str | None = None
    slStopType: str | None = None


class TpslCancelRequest(Request):
    symbol: str
    orderId: str


class TpslOrderId(Wire):
    orderId: Text


class TpslOrder(Wire):
    """One entry of tpsl/get_pending_orders (and the history list)."""

    id: Text
    positionId: Text
    symbol: str
    base: str | None = None
    quote: str | None = None
    side: str | None = None
    tpPrice: Amount | None = None
    tpStopType: str | None = None
    tpOrderType: str | None = None
    tpOrderPrice: Amount | None = None
    tpQty: Amount | None = None
    slPrice: Amount | None = None
    slStopType: str | None = None
    slOrderType: str | None = None
    slOrderPrice: Amount | None = None
    slQty: Amount | None = None
    status: str | None = None
    ctime: Stamp | None = None
    triggerTime: Stamp | None = None
