"""TP/SL endpoints (docs/bitunix.md#tpsl-endpoints). TP/SL orders carry no client id at BitUnix."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchange import parse
from exchange import schemas as w
from exchange.endpoints.base import Endpoints, amount, enum_value
from exchange.models import TpslOrder
from trading.types import OrderType, PositionMode, PositionSide, StopType


class TpslEndpoints(Endpoints):
    async def place_tpsl_order(
        self,
        *,
        symbol: str,
        position_id: str,
        tp_price: Decimal | None = None,
        tp_stop_type: StopType | None = None,
        tp_order_type: OrderType | None = None,
        tp_order_price: Decimal | None = None,
        tp_qty: Decimal | None = None,
        sl_price: Decimal | None = None,
        sl_stop_type: StopType | None = None,
        sl_order_type: OrderType | None = None,
        sl_order_price: Decimal | None = None,
        sl_qty: Decimal | None = None,
    ) -> str:
        """Order-level TP/SL sized by `tp_qty`/`sl_qty`; returns its order id. TP/SL orders have
        no client id: after OutcomeUnknown, list pending TP/SL orders and adopt a match."""
        if tp_price is None and sl_price is None:
            raise ValueError("a TP/SL order needs tp_price or sl_price")
        body = w.TpslPlaceRequest(
            symbol=symbol,
            positionId=position_id,
            tpPrice=amount(tp_price),
            tpStopType=enum_value(tp_stop_type),
            tpOrderType=enum_value(tp_order_type),
            tpOrderPrice=amount(tp_order_price),
            tpQty=amount(tp_qty),
            slPrice=amount(sl_price),
            slStopType=enum_value(sl_stop_type),
            slOrderType=enum_value(sl_order_type),
            slOrderPrice=amount(sl_order_price),
            slQty=amount(sl_qty),
        )
        return await self._request("POST", "tpsl/place_order", _tpsl_id, body=body)

    async def place_position_tpsl(
        self,
        *,
        symbol: str,
        position_id: str,
        tp_price: Decimal | None = None,
        tp_stop_type: StopType | None = None,
        sl_price: Decimal | None = None,
        sl_stop_type: StopType | None = None,
    ) -> str:
        """Position-level TP/SL (one per position; closes all of it at market when hit)."""
        body = _position_tpsl(symbol, position_id, tp_price, tp_stop_type, sl_price, sl_stop_type)
        return await self._request("POST", "tpsl/position/place_order", _tpsl_id, body=body)

    async def modify_tpsl_order(
        self,
        *,
        order_id: str,
        tp_price: Decimal | None = None,
        tp_stop_type: StopType | None = None,
        tp_order_type: OrderType | None = None,
        tp_order_price: Decimal | None = None,
        tp_qty: Decimal | None = None,
        sl_price: Decimal | None = None,
        sl_stop_type: StopType | None = None,
        sl_order_type: OrderType | None = None,
        sl_order_price: Decimal | None = None,
        sl_qty: Decimal | None = None,
    ) -> str:
        if tp_price is None and sl_price is None:
            raise ValueError("a TP/SL modification needs tp_price or sl_price")
        body = w.TpslModifyRequest(
            orderId=order_id,
            tpPrice=amount(tp_price),
            tpStopType=enum_value(tp_stop_type),
            tpOrderType=enum_value(tp_order_type),
            tpOrderPrice=amount(tp_order_price),
            tpQty=amount(tp_qty),
            slPrice=amount(sl_price),
            slStopType=enum_value(sl_stop_type),
            slOrderType=enum_value(sl_order_type),
            slOrderPrice=amount(sl_order_price),
            slQty=amount(sl_qty),
        )
        return await self._request("POST", "tpsl/modify_order", _tpsl_id, body=body)

    async def modify_position_tpsl(
        self,
        *,
        symbol: str,
        position_id: str,
        tp_price: Decimal | None = None,
        tp_stop_type: StopType | None = None,
        sl_price: Decimal | None = None,
        sl_stop_type: StopType | None = None,
    ) -> str:
        body = _position_tpsl(symbol, position_id, tp_price, tp_stop_type, sl_price, sl_stop_type)
        return await self._request("POST", "tpsl/position/modify_order", _tpsl_id, body=body)

    async def cancel_tpsl_order(self, symbol: str, order_id: str) -> str:
        return await self._request(
            "POST",
            "tpsl/cancel_order",
            lambda d: _tpsl_id(d) if d is not None else order_id,
            body=w.TpslCancelRequest(symbol=symbol, orderId=order_id),
        )

    async def pending_tpsl_orders(
        self,
        symbol: str,
        position_id: str | None = None,
        *,
        side: PositionSide | None = None,
        position_mode: PositionMode | None = None,
        skip: int | None = None,
        limit: int | None = None,
    ) -> list[TpslOrder]:
        return await self._request(
            "GET",
            "tpsl/get_pending_orders",
            lambda d: [
                parse.tpsl_order(w.TpslOrder.model_validate(t)) for t in w.as_page(d, "orderList")
            ],
            params={
                "symbol": symbol,
                "positionId": position_id,
                "side": enum_value(side),
                "positionMode": enum_value(position_mode),
                "skip": skip,
                "limit": limit,
            },
        )


def _tpsl_id(data: Any) -> str:
    return w.TpslOrderId.model_validate(w.as_object(data)).orderId


def _position_tpsl(
    symbol: str,
    position_id: str,
    tp_price: Decimal | None,
    tp_stop_type: StopType | None,
    sl_price: Decimal | None,
    sl_stop_type: StopType | None,
) -> w.PositionTpslRequest:
    """The one body of position-level placement and modification (BitUnix: same fields)."""
    if tp_price is None and sl_price is None:
        raise ValueError("a position TP/SL needs tp_price or sl_price")
    return w.PositionTpslRequest(
        symbol=symbol,
        positionId=position_id,
        tpPrice=amount(tp_price),
        tpStopType=enum_value(tp_stop_type),
        slPrice=amount(sl_price),
        slStopType=enum_value(sl_stop_type),
    )
