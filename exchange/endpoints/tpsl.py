"""TP/SL endpoints (docs/bitunix.md#tpsl-endpoints). TP/SL orders carry no client id at BitUnix."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from exchange import parse
from exchange import schemas as w
from exchange.endpoints.base import BeforeSend, Endpoints, amount, enum_value
from exchange.errors import Unavailable
from exchange.models import TpslOrder
from trading.types import OrderType, PositionMode, PositionSide, StopType

PAGE = 100  # BitUnix's largest page
MAX_PAGES = 50  # a bound on one listing; more means something is badly wrong


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
        before_send: BeforeSend | None = None,
    ) -> str:
        """Order-level TP/SL sized by `tp_qty`/`sl_qty`; returns its order id. TP/SL orders have
        no client id: after OutcomeUnknown, list pending TP/SL orders and adopt a match.
        `before_send`: run once its turn in the request budget has come (as `place_order`)."""
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
        return await self._request("POST", "tpsl/place_order", _tpsl_id, body=body,
                                   before_send=before_send)

    async def place_position_tpsl(
        self,
        *,
        symbol: str,
        position_id: str,
        tp_price: Decimal | None = None,
        tp_stop_type: StopType | None = None,
        sl_price: Decimal | None = None,
        sl_stop_type: StopType | None = None,
        before_send: BeforeSend | None = None,
    ) -> str:
        """Position-level TP/SL (one per position; closes all of it at market when hit)."""
        body = _position_tpsl(symbol, position_id, tp_price, tp_stop_type, sl_price, sl_stop_type)
        return await self._request("POST", "tpsl/position/place_order", _tpsl_id, body=body,
                                   before_send=before_send)

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

    async def all_pending_tpsl_orders(
        self, symbol: str | None, position_id: str | None = None
    ) -> list[TpslOrder]:
        """Every pending TP/SL order of `symbol` (None: of the whole account; of one position
        when given), page after page:
        one page holds at most PAGE, and an order on a later page must never be taken as gone.
        The list is newest first, so one created meanwhile shifts the pages: an order seen
        twice is kept once."""
        found: dict[str, TpslOrder] = {}
        for page_no in range(MAX_PAGES):
            page = await self.pending_tpsl_orders(
                symbol, position_id, skip=page_no * PAGE, limit=PAGE
            )
            found.update((o.id, o) for o in page)
            if len(page) < PAGE:
                return list(found.values())
        # Retryable: never conclude from a partial list that an order is gone.
        raise Unavailable(None, f"more than {MAX_PAGES * PAGE} pending TP/SL orders on "
                          f"{symbol or 'the account'}",
                          endpoint="tpsl/get_pending_orders")

    async def tpsl_history_orders(
        self,
        symbol: str,
        position_id: str | None = None,
        *,
        start_time_ms: int | None = None,
        end_time_ms: int | None = None,
        skip: int | None = None,
        limit: int | None = None,
    ) -> list[TpslOrder]:
        """One page (limit ≤ 100, newest first) of TP/SL orders that are no longer pending: each
        with its `status` (FILLED: it fired, at `trigger_time_ms`; CANCELED; SYSTEM_CANCELED
        when its position closed)."""
        return await self._request(
            "GET",
            "tpsl/get_history_orders",
            _tpsl_orders,
            params={
                "symbol": symbol,
                "positionId": position_id,
                "startTime": start_time_ms,
                "endTime": end_time_ms,
                "skip": skip,
                "limit": limit,
            },
        )

    async def find_tpsl_history_order(
        self, symbol: str, order_id: str, position_id: str | None = None
    ) -> TpslOrder | None:
        """The TP/SL `order_id` in the history list (None: not there, or not yet)."""
        for page_no in range(MAX_PAGES):
            page = await self.tpsl_history_orders(
                symbol, position_id, skip=page_no * PAGE, limit=PAGE
            )
            found = next((o for o in page if o.id == order_id), None)
            if found is not None or len(page) < PAGE:
                return found
        return None

    async def pending_tpsl_orders(
        self,
        symbol: str | None,
        position_id: str | None = None,
        *,
        side: PositionSide | None = None,
        position_mode: PositionMode | None = None,
        skip: int | None = None,
        limit: int | None = None,
    ) -> list[TpslOrder]:
        """One page (limit ≤ 100, newest first); all_pending_tpsl_orders reads them all."""
        return await self._request(
            "GET",
            "tpsl/get_pending_orders",
            _tpsl_orders,
            params={
                "symbol": symbol,
                "positionId": position_id,
                "side": enum_value(side),
                "positionMode": enum_value(position_mode),
                "skip": skip,
                "limit": limit,
            },
        )


def _tpsl_orders(data: Any) -> list[TpslOrder]:
    return [parse.tpsl_order(w.TpslOrder.model_validate(t)) for t in w.as_page(data, "orderList")]


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
