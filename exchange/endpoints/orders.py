"""Order endpoints (docs/bitunix.md#trade-endpoints): place, cancel, modify, look up, fills."""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from exchange import parse
from exchange import schemas as w
from exchange.endpoints.base import BeforeSend, Endpoints, amount, enum_value, one_of, positive
from exchange.errors import NotFoundYet
from exchange.models import CancelResult, Fill, Order, PlacedOrder
from trading.types import Effect, OrderStatus, OrderType, Side, StopType, TradeSide


class OrderEndpoints(Endpoints):
    async def place_order(
        self,
        *,
        symbol: str,
        side: Side,
        qty: Decimal,
        order_type: OrderType,
        price: Decimal | None = None,
        effect: Effect | None = None,
        trade_side: TradeSide | None = None,
        position_id: str | None = None,
        reduce_only: bool | None = None,
        client_id: str | None = None,
        tp_price: Decimal | None = None,
        tp_stop_type: StopType | None = None,
        tp_order_type: OrderType | None = None,
        tp_order_price: Decimal | None = None,
        sl_price: Decimal | None = None,
        sl_stop_type: StopType | None = None,
        sl_order_type: OrderType | None = None,
        sl_order_price: Decimal | None = None,
        before_send: BeforeSend | None = None,
    ) -> PlacedOrder:
        """Place one order. In hedge mode `side` names the position (close long = BUY + CLOSE).

        A lost answer raises OutcomeUnknown: look the order up by `client_id` before re-sending;
        DuplicateClientId (30042) means it exists. `before_send`: run once the order's turn in
        the request budget has come, right before it is sent (BitunixClient._request).
        """
        positive(qty, "qty")
        if order_type is OrderType.LIMIT and price is None:
            raise ValueError("a LIMIT order needs a price")
        body = w.PlaceOrderRequest(
            symbol=symbol,
            side=str(side),
            qty=parse.format_decimal(qty),
            orderType=str(order_type),
            price=amount(price),
            effect=enum_value(effect),
            tradeSide=enum_value(trade_side),
            positionId=position_id,
            reduceOnly=reduce_only,
            clientId=client_id,
            tpPrice=amount(tp_price),
            tpStopType=enum_value(tp_stop_type),
            tpOrderType=enum_value(tp_order_type),
            tpOrderPrice=amount(tp_order_price),
            slPrice=amount(sl_price),
            slStopType=enum_value(sl_stop_type),
            slOrderType=enum_value(sl_order_type),
            slOrderPrice=amount(sl_order_price),
        )
        return await self._request(
            "POST",
            "trade/place_order",
            lambda d: parse.placed_order(w.OrderIds.model_validate(w.as_object(d))),
            body=body,
            before_send=before_send,
        )

    async def cancel_orders(
        self, symbol: str, order_ids: Sequence[str] = (), client_ids: Sequence[str] = ()
    ) -> CancelResult:
        """Code 0 proves nothing: each failure is in `failed` with its mapped error, and a
        success still needs the order detail to show a terminal status."""
        if not order_ids and not client_ids:
            raise ValueError("cancel_orders needs at least one order id or client id")
        targets = [w.CancelTarget(orderId=i) for i in order_ids]
        targets += [w.CancelTarget(clientId=c) for c in client_ids]
        return await self._request(
            "POST",
            "trade/cancel_orders",
            _cancel_result,
            body=w.CancelOrdersRequest(symbol=symbol, orderList=targets),
        )

    async def cancel_all_orders(self, symbol: str | None = None) -> CancelResult:
        """Every open order of `symbol`, or of every symbol when None."""
        return await self._request(
            "POST",
            "trade/cancel_all_orders",
            _cancel_result,
            body=w.CancelAllOrdersRequest(symbol=symbol),
        )

    async def modify_order(
        self,
        *,
        symbol: str,
        qty: Decimal,
        price: Decimal,
        order_id: str | None = None,
        client_id: str | None = None,
        tp_price: Decimal | None = None,
        tp_stop_type: StopType | None = None,
        tp_order_type: OrderType | None = None,
        tp_order_price: Decimal | None = None,
        sl_price: Decimal | None = None,
        sl_stop_type: StopType | None = None,
        sl_order_type: OrderType | None = None,
        sl_order_price: Decimal | None = None,
    ) -> PlacedOrder:
        one_of(order_id, client_id)
        positive(qty, "qty")
        body = w.ModifyOrderRequest(
            symbol=symbol,
            qty=parse.format_decimal(qty),
            price=parse.format_decimal(price),
            orderId=order_id,
            clientId=client_id,
            tpPrice=amount(tp_price),
            tpStopType=enum_value(tp_stop_type),
            tpOrderType=enum_value(tp_order_type),
            tpOrderPrice=amount(tp_order_price),
            slPrice=amount(sl_price),
            slStopType=enum_value(sl_stop_type),
            slOrderType=enum_value(sl_order_type),
            slOrderPrice=amount(sl_order_price),
        )
        return await self._request(
            "POST",
            "trade/modify_order",
            lambda d: parse.placed_order(w.OrderIds.model_validate(w.as_object(d))),
            body=body,
        )

    async def order_detail(
        self, order_id: str | None = None, client_id: str | None = None
    ) -> Order:
        """NotFoundYet (20007) right after a placement may only mean "not visible yet"."""
        one_of(order_id, client_id)

        def decode(data: Any) -> Order:
            if not data:
                # Code 0 with no order: treat it like 20007 so the caller looks again.
                raise NotFoundYet(0, "empty order detail").at("trade/get_order_detail")
            return parse.order(w.Order.model_validate(w.as_object(data)))

        return await self._request(
            "GET",
            "trade/get_order_detail",
            decode,
            params={"orderId": order_id, "clientId": client_id},
        )

    async def pending_orders(
        self,
        symbol: str | None = None,
        *,
        order_id: str | None = None,
        client_id: str | None = None,
        status: OrderStatus | None = None,
        start_time_ms: int | None = None,
        end_time_ms: int | None = None,
        skip: int | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """One page (BitUnix: limit ≤ 100, default 10) of open orders."""
        return await self._request(
            "GET",
            "trade/get_pending_orders",
            _orders,
            params={
                "symbol": symbol,
                "orderId": order_id,
                "clientId": client_id,
                "status": enum_value(status),
                "startTime": start_time_ms,
                "endTime": end_time_ms,
                "skip": skip,
                "limit": limit,
            },
        )

    async def history_orders(
        self,
        symbol: str | None = None,
        *,
        order_id: str | None = None,
        client_id: str | None = None,
        status: OrderStatus | None = None,
        order_type: OrderType | None = None,
        query_canceled: bool | None = None,
        start_time_ms: int | None = None,
        end_time_ms: int | None = None,
        skip: int | None = None,
        limit: int | None = None,
    ) -> list[Order]:
        """One page of finished orders. `query_canceled=True`: cancelled ones only (3 days)."""
        return await self._request(
            "GET",
            "trade/get_history_orders",
            _orders,
            params={
                "symbol": symbol,
                "orderId": order_id,
                "clientId": client_id,
                "status": enum_value(status),
                "type": enum_value(order_type),
                "queryCanceled": query_canceled,
                "startTime": start_time_ms,
                "endTime": end_time_ms,
                "skip": skip,
                "limit": limit,
            },
        )

    async def history_trades(
        self,
        symbol: str | None = None,
        *,
        order_id: str | None = None,
        position_id: str | None = None,
        start_time_ms: int | None = None,
        end_time_ms: int | None = None,
        skip: int | None = None,
        limit: int | None = None,
    ) -> list[Fill]:
        """One page (limit ≤ 100) of fills."""

        def decode(data: Any) -> list[Fill]:
            trades = w.as_page(data, "tradeList")
            return [parse.fill(w.Trade.model_validate(t)) for t in trades]

        return await self._request(
            "GET",
            "trade/get_history_trades",
            decode,
            params={
                "symbol": symbol,
                "orderId": order_id,
                "positionId": position_id,
                "startTime": start_time_ms,
                "endTime": end_time_ms,
                "skip": skip,
                "limit": limit,
            },
        )


def _orders(data: Any) -> list[Order]:
    return [parse.order(w.Order.model_validate(o)) for o in w.as_page(data, "orderList")]


def _cancel_result(data: Any) -> CancelResult:
    return parse.cancel_result(w.CancelOrdersResult.model_validate(w.as_object(data)))
