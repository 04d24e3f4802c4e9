"""BitUnix wire models: BitUnix's field names (camelCase, as on the wire), amounts as strings.

Requests are built from these and serialized once; responses are validated into them and then
converted by `exchange.parse` (the only wire → domain converter). Responses are parsed
defensively: unknown fields are ignored, optional fields may be missing or null, and JSON
numbers (read as Decimal by `loads`, never float) are accepted where strings are documented.
One module per group of endpoints; import them from here.
"""

from exchange.schemas.account import (
    Account,
    ChangeLeverageRequest,
    ChangeMarginModeRequest,
    ChangePositionModeRequest,
    LeverageMarginMode,
)
from exchange.schemas.base import (
    Amount,
    Envelope,
    Request,
    Stamp,
    Text,
    Wire,
    as_list,
    as_object,
    as_page,
    dumps,
    loads,
)
from exchange.schemas.market import Depth, Level, Ticker, TradingPair
from exchange.schemas.position import HistoryPosition, PendingPosition, PositionTier
from exchange.schemas.tpsl import (
    PositionTpslRequest,
    TpslCancelRequest,
    TpslModifyRequest,
    TpslOrder,
    TpslOrderId,
    TpslPlaceRequest,
)
from exchange.schemas.trade import (
    CancelAllOrdersRequest,
    CancelFailure,
    CancelOrdersRequest,
    CancelOrdersResult,
    CancelSuccess,
    CancelTarget,
    FlashCloseRequest,
    ModifyOrderRequest,
    Order,
    OrderIds,
    PlaceOrderRequest,
    PositionIdResult,
    Trade,
)

__all__ = [
    "Account",
    "Amount",
    "CancelAllOrdersRequest",
    "CancelFailure",
    "CancelOrdersRequest",
    "CancelOrdersResult",
    "CancelSuccess",
    "CancelTarget",
    "ChangeLeverageRequest",
    "ChangeMarginModeRequest",
    "ChangePositionModeRequest",
    "Depth",
    "Envelope",
    "FlashCloseRequest",
    "HistoryPosition",
    "LeverageMarginMode",
    "Level",
    "ModifyOrderRequest",
    "Order",
    "OrderIds",
    "PendingPosition",
    "PositionTier",
    "PlaceOrderRequest",
    "PositionIdResult",
    "PositionTpslRequest",
    "Request",
    "Stamp",
    "Text",
    "Ticker",
    "TpslCancelRequest",
    "TpslModifyRequest",
    "TpslOrder",
    "TpslOrderId",
    "TpslPlaceRequest",
    "Trade",
    "TradingPair",
    "Wire",
    "as_list",
    "as_object",
    "as_page",
    "dumps",
    "loads",
]
